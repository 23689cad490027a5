use std::{collections::BTreeMap, path::Path, time::Duration};

use super::*;

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn parse_in(text: &str, variables: &[(&str, &str)]) -> Result<Project, ComposeError> {
    parse(
        text,
        "compose.yaml",
        Path::new("/nonexistent-project"),
        &vars(variables),
        (None, "My Project!"),
    )
}

const WEB_AND_DB: &str = r#"
name: shop
x-common: &common
  restart: unless-stopped
services:
  web:
    <<: *common
    image: "shop-web:${TAG:-dev}"
    environment:
      DATABASE_URL: postgres://app@db/app
      FROM_HOST:
      PORT: 8080
    command: python3 -m app --port "${PORT:-80}"
    user: "1000"
    working_dir: /srv
    ports: ["127.0.0.1:8080:80", "9000/udp", {target: 443, published: 8443}]
    expose: ["3000"]
    tmpfs: /run/app
    networks:
      back:
        aliases: [shop]
    depends_on:
      db:
        condition: service_healthy
      cache:
        condition: service_started
  cache:
    image: redis:7
    depends_on: [db]
  db:
    image: postgres:16
    environment: ["POSTGRES_PASSWORD=$${NOT_INTERPOLATED}", "POSTGRES_USER=app"]
    volumes: ["dbdata:/var/lib/postgresql/data", "/scratch", {type: tmpfs, target: /tmp}]
    healthcheck:
      test: pg_isready -U app
      interval: 1s
      timeout: 1m30s
      retries: 30
    networks: [back]
volumes:
  dbdata:
networks:
  back:
    driver: bridge
"#;

#[test]
fn a_web_app_and_its_database() {
    let project = parse_in(WEB_AND_DB, &[("FROM_HOST", "h")]).unwrap();
    assert_eq!(project.name, "shop");
    let web = &project.services["web"];
    assert_eq!(web.image.as_deref(), Some("shop-web:dev"));
    assert_eq!(
        web.environment,
        [
            "DATABASE_URL=postgres://app@db/app",
            "FROM_HOST=h",
            "PORT=8080"
        ]
    );
    assert_eq!(
        web.command.as_deref().unwrap(),
        ["python3", "-m", "app", "--port", "80"]
    );
    assert_eq!(web.user.as_deref(), Some("1000"));
    assert_eq!(web.working_dir.as_deref(), Some("/srv"));
    assert_eq!(web.ports, [80, 443, 3000], "udp left out");
    assert_eq!(web.tmpfs, ["/run/app"]);
    assert_eq!(web.aliases, ["shop"]);
    let db = &project.services["db"];
    assert_eq!(
        db.environment,
        ["POSTGRES_PASSWORD=${NOT_INTERPOLATED}", "POSTGRES_USER=app"]
    );
    assert_eq!(
        db.mounts,
        [
            Mount::Volume {
                name: "dbdata".into(),
                target: "/var/lib/postgresql/data".into(),
                read_only: false
            },
            Mount::Anonymous {
                target: "/scratch".into()
            }
        ]
    );
    assert_eq!(db.tmpfs, ["/tmp"]);
    let check = db.healthcheck.as_ref().unwrap();
    assert_eq!(check.test, ["CMD-SHELL", "pg_isready -U app"]);
    assert_eq!(check.interval, Some(Duration::from_secs(1)));
    assert_eq!(check.timeout, Some(Duration::from_secs(90)));
    assert_eq!(check.retries, Some(30));
    assert_eq!(
        parse_in(WEB_AND_DB, &[("TAG", "2.0")]).unwrap().services["web"]
            .image
            .as_deref(),
        Some("shop-web:2.0"),
        "the environment fills ${{TAG}}"
    );
}

#[test]
fn start_order_follows_depends_on() {
    let project = parse_in(WEB_AND_DB, &[]).unwrap();
    let order = start_order(&project, "web", &Selection::DependsOn).unwrap();
    assert_eq!(
        order,
        [
            Step {
                service: "db".into(),
                wait: Condition::Healthy
            },
            Step {
                service: "cache".into(),
                wait: Condition::Started
            },
        ]
    );
    let only = start_order(&project, "web", &Selection::Only(vec!["cache".into()])).unwrap();
    let names: Vec<&str> = only.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(names, ["db", "cache"], "an included service brings its own");
    let without = start_order(&project, "web", &Selection::Excluding(vec!["cache".into()]));
    let names: Vec<String> = without.unwrap().into_iter().map(|s| s.service).collect();
    assert_eq!(names, ["db"]);
    assert!(start_order(&project, "web", &Selection::Nothing)
        .unwrap()
        .is_empty());
    let err = start_order(&project, "nope", &Selection::DependsOn).unwrap_err();
    assert!(err.to_string().contains("cache, db, web"), "{err}");
}

#[test]
fn cycles_are_named() {
    let text = "services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: {c: {condition: service_started}}}\n  c: {image: x, depends_on: [a]}\n";
    let project = parse_in(text, &[]).unwrap();
    let err = start_order(&project, "a", &Selection::DependsOn).unwrap_err();
    assert_eq!(
        err.to_string(),
        "depends_on goes round in a circle: a -> b -> c -> a"
    );
    let selfish = parse_in("services:\n  a: {image: x, depends_on: [a]}\n", &[]).unwrap();
    assert!(start_order(&selfish, "a", &Selection::DependsOn).is_err());
    let missing = parse_in(
        "services:\n  a: {image: x, depends_on: {b: {required: false}}}\n",
        &[],
    )
    .unwrap();
    assert!(start_order(&missing, "a", &Selection::DependsOn)
        .unwrap()
        .is_empty());
}

#[test]
fn keys_that_change_behaviour_are_refused_by_name() {
    for (text, key) in [
        (
            "services:\n  a: {image: x, privileged: true}\n",
            "privileged",
        ),
        (
            "services:\n  a: {image: x, network_mode: host}\n",
            "network_mode",
        ),
        (
            "services:\n  a: {image: x, extends: {service: b}}\n",
            "extends",
        ),
        ("services:\n  a: {image: x}\nsecrets: {}\n", "secrets"),
        (
            "services:\n  a: {image: x}\nvolumes: {v: {external: true}}\n",
            "external",
        ),
        (
            "services:\n  a: {image: x, healthcheck: {test: [CMD, x], foo: 1}}\n",
            "foo",
        ),
        (
            "services:\n  a: {image: x, volumes: [\"v:/d:nocopy\"]}\nvolumes: {v: }\n",
            "nocopy",
        ),
        (
            "services:\n  a: {image: x, networks: {default: {ipv4_address: 1.2.3.4}}}\n",
            "ipv4_address",
        ),
    ] {
        let err = parse_in(text, &[]).unwrap_err();
        match &err {
            ComposeError::Unsupported { key: named, .. } => assert_eq!(named, key, "{text}"),
            other => panic!("{text}: {other}"),
        }
        assert!(err.to_string().contains(key), "{err}");
        assert!(err.hint(Path::new("c.yml")).contains("subset"));
    }
    // Extension keys and what does not change a single run are fine.
    let ok = "x-top: 1\nversion: '3'\nservices:\n  a: {image: x, x-mine: 2, restart: always, profiles: [dev]}\n";
    assert!(parse_in(ok, &[]).is_ok());
}

#[test]
fn input_errors_say_where() {
    let cases = [
        (
            "services:\n  a: {image: x, volumes: [\"v:/d\"]}\n",
            "not declared",
        ),
        (
            "services:\n  a: {image: x, ports: [\"8000-8001:80-81\"]}\n",
            "ranges",
        ),
        (
            "services:\n  a: {image: x, volumes: [\"./nope-slim:/d\"]}\n",
            "does not exist",
        ),
        (
            "services:\n  a: {image: x, healthcheck: {interval: soon}}\n",
            "duration",
        ),
        (
            "services:\n  a: {image: x, depends_on: {b: {condition: ready}}}\n",
            "condition",
        ),
        (
            "services:\n  a: {image: x, labels: {slim.run: x}}\n",
            "slim's own",
        ),
        (
            "services:\n  a: {image: \"${NEED:?give NEED}\"}\n",
            "give NEED",
        ),
        (
            "services:\n  \"bad name\": {image: x}\n",
            "not a valid name",
        ),
        ("services: []\n", "no services"),
        ("- a\n- b\n", "not a mapping"),
        ("services:\n  a: {image: [x\n", "YAML"),
    ];
    for (text, expected) in cases {
        let err = parse_in(text, &[]).unwrap_err().to_string();
        assert!(err.contains(expected), "{text:?}: {err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
}

#[test]
fn a_build_section_is_noted_and_project_names_normalized() {
    let project = parse_in("services:\n  web: {build: .}\n", &[]).unwrap();
    assert!(project.services["web"].build);
    assert_eq!(project.name, "myproject");
    let err = ComposeError::NeedsBuild {
        service: "web".into(),
    };
    assert!(err
        .hint(Path::new("compose.yml"))
        .contains("docker compose -f compose.yml build web"));
}

#[test]
fn env_files_and_the_project_env() {
    let dir = std::env::temp_dir().join(format!("slim-compose-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join(".env"), "TAG=from-dotenv\nPORT=81\n").unwrap();
    std::fs::write(dir.join("other.env"), "TAG=from-other\n").unwrap();
    std::fs::write(dir.join("web.env"), "A=1\nB=from-file\n").unwrap();
    let file = dir.join("compose.yaml");
    std::fs::write(
        &file,
        "services:\n  web:\n    image: app:${TAG}\n    env_file: [web.env, {path: missing.env, required: false}]\n    environment: [B=from-environment]\n    volumes: [./data:/data:ro]\n",
    )
    .unwrap();
    let project = load(&file, &LoadOptions::default()).unwrap();
    let web = &project.services["web"];
    assert_eq!(web.image.as_deref(), Some("app:from-dotenv"));
    assert_eq!(
        web.environment,
        ["A=1", "B=from-file", "B=from-environment"]
    );
    assert_eq!(
        web.mounts,
        [Mount::Bind {
            source: dir.join("data"),
            target: "/data".into(),
            read_only: true
        }]
    );
    let with_file = LoadOptions {
        env_file: Some(dir.join("other.env")),
        project_name: Some("Given".into()),
        ..Default::default()
    };
    let project = load(&file, &with_file).unwrap();
    assert_eq!(
        project.services["web"].image.as_deref(),
        Some("app:from-other")
    );
    assert_eq!(project.name, "given");
    let host_wins = LoadOptions {
        host_env: vec![("TAG".into(), "from-host".into())],
        ..Default::default()
    };
    let project = load(&file, &host_wins).unwrap();
    assert_eq!(
        project.services["web"].image.as_deref(),
        Some("app:from-host")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shell_words_and_durations() {
    use super::service::{duration_for_tests as d, split_for_tests as split};
    assert_eq!(
        split(r#"sh -c 'echo "hi there"' a\ b"#).unwrap(),
        ["sh", "-c", "echo \"hi there\"", "a b"]
    );
    assert_eq!(split("''").unwrap(), [""]);
    assert!(split("'open").is_none());
    assert_eq!(d("1m30s").unwrap(), Duration::from_secs(90));
    assert_eq!(d("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(d("2h").unwrap(), Duration::from_secs(7200));
    for bad in ["", "10", "s", "1d", "99999999999999999999s", "-1s"] {
        assert!(d(bad).is_err(), "{bad}");
    }
}

/// Hostile input: random bytes, random YAML-ish text and deep nesting never panic, and an
/// alias bomb is refused within the parser's budget.
#[test]
fn hostile_input_never_panics() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let pieces = [
        "services:",
        "\n  ",
        "web:",
        " image: ",
        "${",
        "}",
        "$$",
        ":-",
        ":?",
        "[",
        "]",
        "{",
        "}",
        "- ",
        "depends_on:",
        "volumes:",
        "&a ",
        "*a",
        "<<: ",
        "'",
        "\"",
        "healthcheck:",
        "test: ",
        "ports:",
        "\n",
        "x",
        ":",
        "1s",
        "\u{0}",
        "é",
        "networks:",
        "aliases:",
    ];
    for _ in 0..20_000 {
        let mut text = String::new();
        for _ in 0..(next() % 40) {
            text.push_str(pieces[(next() % pieces.len() as u64) as usize]);
        }
        let _ = parse_in(&text, &[("A", "1")]);
        let bytes: Vec<u8> = (0..(next() % 64)).map(|_| next() as u8).collect();
        let _ = parse_in(&String::from_utf8_lossy(&bytes), &[]);
        let _ = super::env::parse(&text, "f");
    }
    let deep = format!("services: {}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(parse_in(&deep, &[]).is_err());
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 0..12 {
        let prev = if level == 0 {
            "a".to_string()
        } else {
            format!("l{}", level - 1)
        };
        bomb.push_str(&format!(
            "l{level}: &l{level} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
        ));
    }
    bomb.push_str("services: {}\n");
    assert!(parse_in(&bomb, &[]).is_err(), "an alias bomb is refused");
}
