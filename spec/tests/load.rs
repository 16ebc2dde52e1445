//! Loading a whole `services/` directory.

use baton_spec::load_services;

const WEB: &str =
    "name = \"web\"\nimage = \"nginx\"\nport = 80\npublish = 8080\nallow = [\"db\", \"cache\"]\n";
const DB: &str = "name = \"db\"\nimage = \"postgres:16\"\n";

#[test]
fn loads_valid_specs_and_reports_bad_ones_per_file() {
    let files = [
        ("web.toml", WEB),
        ("db.toml", DB),
        ("broken.toml", "name = \"broken\"\nimage = 5\n"),
        ("README.txt", "hello"),
        ("._web.toml", "\u{0}\u{5}binary"),
    ];
    let loaded = load_services(&files);
    let names: Vec<_> = loaded.specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["db", "web"]);
    assert_eq!(loaded.errors.len(), 1, "{:?}", loaded.errors);
    assert_eq!(loaded.errors[0].file, "services/broken.toml");
    assert_eq!(loaded.errors[0].line, Some(2));
    assert_eq!(loaded.errors[0].field, "image");
    assert_eq!(loaded.notes.len(), 3, "{:?}", loaded.notes);
    assert!(loaded.notes[0].starts_with("services/README.txt: ignored"));
    assert!(loaded.notes[1].starts_with("services/._web.toml: ignored"));
    assert!(loaded.notes[2].contains("\"cache\""), "{:?}", loaded.notes);
}

#[test]
fn duplicate_names_ports_and_routes_refuse_every_file_involved() {
    let files = [
        ("web.toml", WEB.to_string()),
        // The same name through a differently cased extension (FAT does not care).
        ("web.TOML", WEB.replace("8080", "8081")),
        ("api.toml", "name = \"api\"\nimage = \"nginx\"\nport = 80\n\npublish = 9000\n".into()),
        ("admin.toml", "name = \"admin\"\nimage = \"nginx\"\nport = 80\npublish = 9000\n".into()),
        ("a.toml", "name = \"a\"\nimage = \"nginx\"\nport = 80\n[route]\nhost = \"x.lan\"\n".into()),
        ("b.toml", "name = \"b\"\nimage = \"nginx\"\nport = 80\nroute = { host = \"x.lan\", path = \"/\" }\n".into()),
        ("db.toml", DB.to_string()),
    ];
    let loaded = load_services(&files);
    let names: Vec<_> = loaded.specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["db"]);
    let got: Vec<_> = loaded
        .errors
        .iter()
        .map(|e| (e.file.as_str(), e.line, e.field.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("services/a.toml", Some(4), "route"),
            ("services/admin.toml", Some(4), "publish"),
            ("services/api.toml", Some(5), "publish"),
            ("services/b.toml", Some(4), "route"),
            ("services/web.TOML", Some(1), "name"),
            ("services/web.toml", Some(1), "name"),
        ]
    );
    assert!(
        loaded.errors[1].message.contains("board port 9000")
            && loaded.errors[1].message.contains("services/api.toml"),
        "{}",
        loaded.errors[1]
    );
}

#[test]
fn routes_clash_on_normalised_hosts_and_paths() {
    let spec = |name: &str, route: &str| {
        (
            format!("{name}.toml"),
            format!("name = \"{name}\"\nimage = \"nginx\"\nport = 80\nroute = {route}\n"),
        )
    };
    let files = [
        spec("a", "{ host = \"Shop.lan\", path = \"/api/\" }"),
        spec("b", "{ host = \"shop.lan.\", path = \"/api\" }"),
        // Not clashes: another path, a wildcard beside an exact name, any host.
        spec("c", "{ host = \"shop.lan\", path = \"/apix\" }"),
        spec("d", "{ host = \"*.shop.lan\", path = \"/api\" }"),
        spec("e", "{ host = \"x.shop.lan\", path = \"/api\" }"),
        spec("f", "{ path = \"/api\" }"),
    ];
    let loaded = load_services(&files);
    let names: Vec<_> = loaded.specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["c", "d", "e", "f"]);
    let got: Vec<_> = loaded
        .errors
        .iter()
        .map(|e| (e.file.as_str(), e.line, e.field.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("services/a.toml", Some(4), "route"),
            ("services/b.toml", Some(4), "route")
        ]
    );
    assert!(
        loaded.errors[0].message.contains("route shop.lan/api"),
        "{}",
        loaded.errors[0]
    );
}

#[test]
fn a_published_port_beside_an_auth_route_gets_a_note() {
    let files = [(
        "web.toml",
        "name = \"web\"\nimage = \"nginx\"\nport = 80\npublish = 8080\nroute = { auth = \"mtls\" }\n",
    )];
    let loaded = load_services(&files);
    assert_eq!(loaded.specs.len(), 1);
    assert!(
        loaded
            .notes
            .iter()
            .any(|n| n.contains("publish") && n.contains("8080")),
        "{:?}",
        loaded.notes
    );
}
