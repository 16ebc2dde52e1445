use super::*;

fn network() -> Network {
    Network::offline(
        Ipv4Net::new(Ipv4Addr::new(10, 88, 0, 0), 24),
        Ipv4Addr::new(10, 88, 0, 1),
        HostFiles::under(Path::new("/nonexistent")),
    )
}

#[test]
fn instances_may_start_only_once_a_rule_set_is_in_force_and_refusals_are_retried() {
    let spec = baton_spec::service::load_services(&[(
        "web.toml".to_string(),
        "name = \"web\"\nimage = \"oci-archive:images/web.tar\"\nport = 8080\n".to_string(),
    )])
    .specs
    .pop()
    .expect("a valid spec");
    let members = [Member {
        spec: &spec,
        instances: vec![(Ipv4Addr::new(10, 88, 0, 2), true)],
    }];
    let remote = Remote::default();
    let mut net = network();
    assert!(net.failure().is_some(), "nothing applied yet");

    let refused = net.update_with(&members, &remote, |_| Err("nf_tables missing"));
    assert_eq!(refused.as_deref(), Some("nf_tables missing"));
    assert_eq!(net.failure().as_deref(), Some("nf_tables missing"));

    // The same state again: tried again, not taken for applied.
    let mut tried = 0;
    let again = net.update_with(&members, &remote, |p| {
        tried += 1;
        assert_eq!(p.services.len(), 1);
        Ok::<(), &str>(())
    });
    assert_eq!((again, tried), (None, 1));
    assert_eq!(net.failure(), None);
    let generation = net.generation();

    // Unchanged since it was applied: nothing is sent.
    let unchanged = net.update_with(&members, &remote, |_| -> Result<(), &str> {
        panic!("applied twice")
    });
    assert_eq!((unchanged, net.generation()), (None, generation));

    // A later refusal stops new instances again.
    let more = [Member {
        spec: &spec,
        instances: vec![
            (Ipv4Addr::new(10, 88, 0, 2), true),
            (Ipv4Addr::new(10, 88, 0, 3), true),
        ],
    }];
    net.update_with(&more, &remote, |_| Err("rule refused"));
    assert_eq!(net.failure().as_deref(), Some("rule refused"));
}

#[test]
fn only_instances_with_egress_have_their_other_names_forwarded() {
    let specs = baton_spec::service::load_services(&[
        (
            "web.toml".to_string(),
            "name = \"web\"\nimage = \"oci-archive:images/web.tar\"\n".to_string(),
        ),
        (
            "db.toml".to_string(),
            "name = \"db\"\nimage = \"oci-archive:images/db.tar\"\negress = \"none\"\n".to_string(),
        ),
    ])
    .specs;
    let members: Vec<Member<'_>> = specs
        .iter()
        .map(|spec| Member {
            spec,
            instances: vec![(
                if spec.name == "web" {
                    Ipv4Addr::new(10, 88, 0, 2)
                } else {
                    Ipv4Addr::new(10, 88, 0, 3)
                },
                true,
            )],
        })
        .collect();
    let mut net = network();
    net.update_with(&members, &Remote::default(), |_| Ok::<(), &str>(()));
    let reaching = net.reaching.read().map(|r| r.clone()).unwrap_or_default();
    assert_eq!(
        reaching.into_iter().collect::<Vec<_>>(),
        [std::net::IpAddr::from([10, 88, 0, 2])]
    );
}

#[test]
fn other_boards_bridges_may_reach_the_routed_instances_here() {
    let loaded = baton_spec::service::load_services(&[
        (
            "web.toml".to_string(),
            "name = \"web\"\nimage = \"oci-archive:images/web.tar\"\nport = 8080\nroute = { path = \"/web\" }\n"
                .to_string(),
        ),
        (
            "db.toml".to_string(),
            "name = \"db\"\nimage = \"oci-archive:images/db.tar\"\nport = 5432\n".to_string(),
        ),
    ]);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let members: Vec<Member<'_>> = loaded
        .specs
        .iter()
        .map(|spec| Member {
            spec,
            // One instance here, one on the board of 10.88.7.0/24.
            instances: if spec.name == "web" {
                vec![
                    (Ipv4Addr::new(10, 88, 0, 2), true),
                    (Ipv4Addr::new(10, 88, 7, 2), true),
                ]
            } else {
                vec![(Ipv4Addr::new(10, 88, 0, 3), true)]
            },
        })
        .collect();
    let remote = Remote {
        mesh: Some("baton-wg".to_string()),
        subnets: vec![
            Ipv4Net::new(Ipv4Addr::new(10, 88, 7, 0), 24),
            Ipv4Net::new(Ipv4Addr::new(10, 88, 9, 0), 24),
        ],
        instances: Vec::new(),
    };
    let mut seen = None;
    network().update_with(&members, &remote, |p| {
        seen = Some((p.front_door_peers.clone(), p.routed.clone()));
        Ok::<(), &str>(())
    });
    assert_eq!(
        seen,
        Some((
            vec![Ipv4Addr::new(10, 88, 7, 1), Ipv4Addr::new(10, 88, 9, 1)],
            vec![(Ipv4Addr::new(10, 88, 0, 2), 8080)]
        )),
        "the other boards' bridges; web's instance here only, db has no route"
    );
}

#[test]
fn uplinks_are_the_interfaces_with_a_device() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, device) in [
        ("eth0", true),
        ("wlan0", true),
        ("lo", false),
        ("baton0", false),
        ("baton-wg", false),
        ("bv0a580002", false),
    ] {
        let iface = dir.path().join(name);
        std::fs::create_dir(&iface).expect("mkdir");
        if device {
            std::fs::create_dir(iface.join("device")).expect("mkdir");
        }
    }
    assert_eq!(uplinks(dir.path()), ["eth0", "wlan0"]);
    assert!(uplinks(&dir.path().join("missing")).is_empty());
}

#[test]
fn upstreams_come_from_resolv_conf_without_loopback() {
    let conf =
        "# dhcp\nnameserver 10.0.2.3\nnameserver 127.0.0.53\nsearch lan\nnameserver 192.168.1.1\n";
    assert_eq!(
        upstreams_from(conf),
        [
            SocketAddr::from(([10, 0, 2, 3], 53)),
            SocketAddr::from(([192, 168, 1, 1], 53))
        ]
    );
}

#[test]
fn the_board_s_interfaces_and_resolvers_are_read_under_its_root() {
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(root.path().join("sys/class/net/eth0/device")).expect("mkdir");
    std::fs::create_dir_all(root.path().join("sys/class/net/baton0")).expect("mkdir");
    std::fs::create_dir_all(root.path().join("etc")).expect("mkdir");
    std::fs::write(
        root.path().join("etc/resolv.conf"),
        "nameserver 192.0.2.53\n",
    )
    .expect("write");
    let host = HostFiles::under(root.path());
    assert_eq!(host.resolv_conf(), b"nameserver 192.0.2.53\n");
    let mut net = Network { host, ..network() };
    let mut seen = None;
    net.update_with(&[], &Remote::default(), |p| {
        seen = Some((p.uplinks.clone(), p.lan_filter));
        Ok::<(), &str>(())
    });
    assert_eq!(seen, Some((vec!["eth0".to_string()], true)));
    let upstreams = net.upstreams.read().map(|u| u.clone()).unwrap_or_default();
    assert_eq!(upstreams, [SocketAddr::from(([192, 0, 2, 53], 53))]);
}

#[test]
fn the_auth_service_a_route_forwards_to_is_reachable_like_a_routed_one() {
    let spec = |name: &str, port: u16, route: &str| {
        (
            format!("{name}.toml"),
            format!("name = \"{name}\"\nimage = \"oci-archive:images/{name}.tar\"\nport = {port}\n{route}"),
        )
    };
    let loaded = baton_spec::service::load_services(&[
        spec(
            "wiki",
            8080,
            "route = { host = \"wiki.lan\", auth = \"forward\", forward = { url = \"http://Auth:9091/api/verify\" } }\n",
        ),
        spec("auth", 9091, ""),
        spec("db", 5432, ""),
    ]);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let members: Vec<Member<'_>> = loaded
        .specs
        .iter()
        .enumerate()
        .map(|(i, spec)| Member {
            spec,
            instances: vec![(Ipv4Addr::new(10, 88, 0, 2 + i as u8), true)],
        })
        .collect();
    let remote = Remote {
        mesh: Some("baton-wg".to_string()),
        subnets: vec![Ipv4Net::new(Ipv4Addr::new(10, 88, 7, 0), 24)],
        instances: Vec::new(),
    };
    let mut routed = None;
    network().update_with(&members, &remote, |p| {
        routed = Some(p.routed.clone());
        Ok::<(), &str>(())
    });
    let mut routed = routed.expect("a policy");
    routed.sort();
    let port_of = |name: &str| {
        let i = loaded
            .specs
            .iter()
            .position(|s| s.name == name)
            .expect(name);
        (
            Ipv4Addr::new(10, 88, 0, 2 + i as u8),
            loaded.specs[i].port.expect("port"),
        )
    };
    let mut expected = vec![port_of("wiki"), port_of("auth")];
    expected.sort();
    assert_eq!(
        routed, expected,
        "wiki is routed, auth is its auth service, db neither"
    );
}

#[test]
fn the_policy_applied_is_watched_and_a_refused_one_is_not() {
    let spec = baton_spec::service::load_services(&[(
        "web.toml".to_string(),
        "name = \"web\"\nimage = \"oci-archive:images/web.tar\"\nport = 8080\n\n[scale]\nmin = 0\n"
            .to_string(),
    )])
    .specs
    .pop()
    .expect("a valid spec");
    let members = [Member {
        spec: &spec,
        instances: vec![(Ipv4Addr::new(10, 88, 0, 2), false)],
    }];
    let remote = Remote::default();
    let mut net = network();
    let applied = net.applied();
    assert!(applied.borrow().is_none(), "nothing applied yet");
    net.update_with(&members, &remote, |_| Err("nf_tables missing"));
    assert!(
        applied.borrow().is_none(),
        "a refused rule set is not shown"
    );
    net.update_with(&members, &remote, |_| Ok::<(), &str>(()));
    let shown = applied.borrow().clone().expect("the policy applied");
    assert_eq!(shown.generation, net.generation());
    let web = shown.service("web").expect("web");
    assert!(web.activate, "scale.min = 0 is activated on a call");
    assert_eq!(
        web.instances,
        vec![Instance {
            addr: Ipv4Addr::new(10, 88, 0, 2),
            healthy: false
        }]
    );
}
