//! What `PUT /v1/services/{name}` checks before it keeps a spec: the text as the board would run
//! it, beside the card's other specs (so a clash of name, published port or route is refused),
//! and against this board's `[front_door]` (a route needing identity settings the board lacks,
//! a published front-door port).

use baton_spec::service::{load_services_with, SERVICES_DIR};
use baton_spec::{ConfigError, FrontDoor, ServiceSpec};

/// Why a spec is refused.
#[derive(Debug, PartialEq)]
pub(super) enum Refused {
    /// Its problems, each with file, line and field.
    Invalid(Vec<ConfigError>),
    /// It is valid but defines another service than the one named in the URL.
    OtherName,
}

/// Validates `body` as `services/{name}.toml` beside `others` (the card's files, that one
/// excluded) on a board with `front_door`.
pub(super) fn check(
    name: &str,
    body: &str,
    mut others: Vec<(String, String)>,
    front_door: &FrontDoor,
) -> Result<ServiceSpec, Refused> {
    let file = format!("{name}.toml");
    let path = format!("{SERVICES_DIR}/{file}");
    others.push((file, body.to_string()));
    let loaded = load_services_with(&others, front_door);
    let errors: Vec<_> = loaded
        .errors
        .into_iter()
        .filter(|e| e.file == path)
        .collect();
    if !errors.is_empty() {
        return Err(Refused::Invalid(errors));
    }
    loaded
        .specs
        .into_iter()
        .find(|s| s.name == name)
        .ok_or(Refused::OtherName)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(r: Result<ServiceSpec, Refused>) -> Vec<(Option<usize>, String)> {
        match r {
            Err(Refused::Invalid(e)) => {
                assert!(e.iter().all(|e| e.file == "services/web.toml"), "{e:?}");
                e.into_iter().map(|e| (e.line, e.field)).collect()
            }
            other => panic!("not refused as invalid: {other:?}"),
        }
    }

    #[test]
    fn a_route_needing_settings_the_board_lacks_is_refused_with_line_and_field() {
        let body = "name = \"web\"\nimage = \"nginx\"\nport = 80\n[route]\nauth = \"oidc\"\n";
        let got = fields(check("web", body, Vec::new(), &FrontDoor::default()));
        assert_eq!(got, [(Some(5), "route.auth".to_string())]);

        let cluster = "[cluster]\nkey = \"0123456789abcdef0123456789abcdef\"\n[api]\ntoken = \"secret-token-1234567\"\n\
                       [front_door.oidc]\nissuer = \"https://idp.lan\"\naudience = \"baton\"\njwks = \"certs/jwks.json\"\n";
        let board = baton_spec::BoardConfig::parse("cluster.toml", cluster).expect("valid");
        let spec = check("web", body, Vec::new(), &board.front_door).expect("accepted");
        assert_eq!(spec.name, "web");
    }

    #[test]
    fn the_ports_the_front_door_uses_cannot_be_published() {
        let cluster = "[cluster]\nkey = \"0123456789abcdef0123456789abcdef\"\n[api]\ntoken = \"secret-token-1234567\"\n\
                       [front_door]\nhttps = 8443\n";
        let board = baton_spec::BoardConfig::parse("cluster.toml", cluster).expect("valid");
        let body = "name = \"web\"\nimage = \"nginx\"\nport = 80\npublish = 8443\n";
        let got = fields(check("web", body, Vec::new(), &board.front_door));
        assert_eq!(got, [(Some(4), "publish".to_string())]);
        // 443 is free on this board, whose front door moved; 80 is still its HTTP port.
        let body = "name = \"web\"\nimage = \"nginx\"\nport = 80\npublish = 443\n";
        assert!(check("web", body, Vec::new(), &board.front_door).is_ok());
        let body = "name = \"web\"\nimage = \"nginx\"\nport = 80\npublish = 80\n";
        let got = fields(check("web", body, Vec::new(), &board.front_door));
        assert_eq!(got, [(Some(4), "publish".to_string())]);
    }

    #[test]
    fn a_clash_with_another_file_and_another_name_are_refused() {
        let other = (
            "shop.toml".to_string(),
            "name = \"shop\"\nimage = \"nginx\"\nport = 80\nroute = { host = \"shop.lan\", path = \"/api\" }\n"
                .to_string(),
        );
        let body = "name = \"web\"\nimage = \"nginx\"\nport = 80\nroute = { host = \"SHOP.lan\", path = \"/api/\" }\n";
        let got = fields(check("web", body, vec![other], &FrontDoor::default()));
        assert_eq!(got, [(Some(4), "route".to_string())]);
        let body = "name = \"shop\"\nimage = \"nginx\"\n";
        let got = check("web", body, Vec::new(), &FrontDoor::default());
        // The name must equal the file's stem, so this is a validation error of `name`.
        assert_eq!(fields(got), [(Some(1), "name".to_string())]);
    }
}
