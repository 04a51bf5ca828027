//! Pull, push, conflicts and deletions over HTTP.

use morango::api::ServerSettings;

use super::harness::{Client, Server, Users, Wants};
use crate::fixtures::{self, find_learner, rename_learner};
use crate::on_both_backends;
use crate::support::Backend;

on_both_backends!(a_full_facility_client_pulls_and_pushes_over_http);

async fn a_full_facility_client_pulls_and_pushes_over_http(backend: Backend) {
    let server = Server::start(backend, ServerSettings::default(), Users::new()).await;
    let ada = fixtures::learner(server.db(), &server.facility, "ada").await;
    fixtures::log(server.db(), &ada, "video").await;

    let tablet = Client::enrol(backend, &server, Wants::Facility).await;
    let first = tablet.sync(&server).await;
    assert_eq!(first.pull.unwrap().records_total, 3);
    assert_eq!(find_learner(tablet.peer.db(), &ada.id).await.unwrap().full_name, "ada Learner");

    rename_learner(tablet.peer.db(), &ada.id, "edited on the tablet").await;
    let second = tablet.sync(&server).await;
    assert_eq!(second.push.unwrap().records_total, 1);
    assert_eq!(find_learner(server.db(), &ada.id).await.unwrap().full_name, "edited on the tablet");
    tablet.finish().await;
    server.finish().await;
}
