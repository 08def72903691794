//! The wire contract: what one side writes, the other reads back.

use pat_core::protocol::control::{self, Accepted, Floor, Refused, Reply, Status};
use pat_core::protocol::origin::{self, SinceError, UsageAccepted, catch_up_path, parse_since};
use pat_core::protocol::{ErrorReply, JSON, OCTET_STREAM};

fn read(json: &str) -> Reply {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
}

#[test]
fn every_control_answer_reads_as_a_reply() {
    let accepted = serde_json::to_string(&Accepted {
        result: 0,
        version: 3,
        tokens: 10,
        issued_at: 99,
    })
    .expect("json");
    assert_eq!(
        accepted,
        r#"{"result":0,"version":3,"tokens":10,"issued_at":99}"#
    );
    let reply = read(&accepted);
    assert_eq!(
        (reply.result, reply.version, reply.tokens, reply.issued_at),
        (0, Some(3), Some(10), Some(99))
    );

    let refused = serde_json::to_string(&Refused {
        result: 409,
        error: "not \"newer\"".into(),
        source: control::SOURCE.into(),
        current_version: 7,
    })
    .expect("json");
    let reply = read(&refused);
    assert_eq!(
        (reply.result, reply.current_version, reply.error.as_deref()),
        (409, Some(7), Some("not \"newer\""))
    );

    let error =
        serde_json::to_string(&ErrorReply::new(503, "busy", control::SOURCE)).expect("json");
    assert_eq!(
        error,
        r#"{"result":503,"error":"busy","source":"pat-edge"}"#
    );
    let reply = read(&error);
    assert_eq!((reply.result, reply.current_version), (503, None));

    let status = Status {
        result: 0,
        loaded: true,
        version: 4,
        tokens: 2,
        issued_at: 5,
        expires_at: 6,
        key_id: Some("k1".into()),
        floor: Some(Floor::Pending),
    };
    let written = serde_json::to_string(&status).expect("json");
    assert_eq!(
        written,
        r#"{"result":0,"loaded":true,"version":4,"tokens":2,"issued_at":5,"expires_at":6,"key_id":"k1","floor":"pending"}"#
    );
    let reply = read(&written);
    assert_eq!(
        (reply.loaded, reply.version, reply.key_id.as_deref()),
        (Some(true), Some(4), Some("k1"))
    );
    assert_eq!(
        serde_json::from_str::<Status>(&written).expect("status"),
        status
    );
}

#[test]
fn the_floor_is_a_version_or_pending_and_absent_without_an_origin() {
    let status = |floor| Status {
        result: 0,
        loaded: false,
        version: 0,
        tokens: 0,
        issued_at: 0,
        expires_at: 0,
        key_id: None,
        floor,
    };
    assert_eq!(
        serde_json::to_string(&status(Some(Floor::Version(12)))).expect("json"),
        r#"{"result":0,"loaded":false,"version":0,"tokens":0,"issued_at":0,"expires_at":0,"floor":12}"#
    );
    assert_eq!(
        serde_json::to_string(&status(None)).expect("json"),
        r#"{"result":0,"loaded":false,"version":0,"tokens":0,"issued_at":0,"expires_at":0}"#
    );
    assert_eq!(
        serde_json::from_str::<Floor>("12").expect("floor"),
        Floor::Version(12)
    );
    assert!(serde_json::from_str::<Floor>(r#""later""#).is_err());
    assert!(serde_json::from_str::<Floor>("-1").is_err());
}

#[test]
fn errors_keep_escapes_and_read_back() {
    let written =
        serde_json::to_string(&ErrorReply::new(701, "pate_…x \"quoted\"\n", "JEL")).expect("json");
    let read: ErrorReply<'_> = serde_json::from_str(&written).expect("error");
    assert_eq!(read.error, "pate_…x \"quoted\"\n");
    assert_eq!(read.source, "JEL");
}

#[test]
fn usage_answers_read_back() {
    let written = serde_json::to_string(&UsageAccepted {
        result: 0,
        edge: "edge-1".into(),
        uses: 3,
        updated: 2,
    })
    .expect("json");
    assert_eq!(
        written,
        r#"{"result":0,"edge":"edge-1","uses":3,"updated":2}"#
    );
    let read: UsageAccepted<'_> = serde_json::from_str(&written).expect("usage");
    assert_eq!((read.edge.as_ref(), read.uses), ("edge-1", 3));
}

#[test]
fn a_catch_up_names_the_version_held_and_the_origin_reads_it() {
    assert_eq!(catch_up_path(origin::SNAPSHOT_PATH, 0), "/snapshot");
    let path = catch_up_path(origin::SNAPSHOT_PATH, 41);
    assert_eq!(path, "/snapshot?since=41");
    let query = path.split_once('?').map(|(_, q)| q);
    assert_eq!(parse_since(query), Ok(Some(41)));
}

#[test]
fn since_is_a_version_or_nothing() {
    assert_eq!(parse_since(None), Ok(None));
    assert_eq!(parse_since(Some("")), Ok(None));
    assert_eq!(parse_since(Some("since=7")), Ok(Some(7)));
    assert_eq!(parse_since(Some("since=0")), Ok(Some(0)));
    assert_eq!(
        parse_since(Some(&format!("since={}", u64::MAX))),
        Ok(Some(u64::MAX))
    );
    for bad in [
        "since=",
        "since",
        "since=-1",
        "since=1.5",
        "since=x",
        "since=99999999999999999999",
        "since=%31",
        "since=+1",
    ] {
        assert!(
            matches!(parse_since(Some(bad)), Err(SinceError::NotAVersion(_))),
            "{bad}"
        );
    }
    assert_eq!(parse_since(Some("since=1&since=1")), Err(SinceError::Twice));
    assert!(matches!(
        parse_since(Some("since=1&x=2")),
        Err(SinceError::Unknown(name)) if name == "x"
    ));
    assert_eq!(
        SinceError::NotAVersion("x".into()).to_string(),
        "since=\"x\" is not a version: give the version the edge holds, digits only"
    );
}

#[test]
fn the_paths_and_types_are_what_edges_and_pat_admin_serve() {
    assert_eq!(control::PATH, "/_pat/snapshot");
    assert_eq!(
        (origin::SNAPSHOT_PATH, origin::HEAD_PATH, origin::USAGE_PATH),
        ("/snapshot", "/snapshot/head", "/usage")
    );
    assert_eq!(origin::VERSION_HEADER, "x-pat-snapshot-version");
    assert_eq!(
        (OCTET_STREAM, JSON),
        ("application/octet-stream", "application/json")
    );
}
