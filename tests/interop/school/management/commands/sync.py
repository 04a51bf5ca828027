import json

from django.core.management.base import BaseCommand
from django.core.management.base import CommandError

from morango.models.certificates import Certificate
from morango.sync.controller import MorangoProfileController
from school.interop import output


class Command(BaseCommand):
    help = (
        "Syncs with a Morango server as Kolibri does, with Morango's own client (MorangoProfileController, "
        "NetworkSyncConnection): finds the server's full-facility certificate for the facility, reuses a "
        "certificate this database owns for the scope or requests one (a CSR with --username/--password, sent as "
        "'username=U&facility=F'), opens a sync session, pulls the certificate's read filter, pushes its write "
        "filter and closes the session. --user syncs one learner's data under the single-user scope."
    )

    def add_arguments(self, parser):
        parser.add_argument("url", help="the server's base URL, ending with /")
        parser.add_argument("facility_id")
        parser.add_argument("--username")
        parser.add_argument("--password")
        parser.add_argument("--user", help="a learner id: sync the single-user scope of this learner")
        parser.add_argument("--no-pull", action="store_true")
        parser.add_argument("--no-push", action="store_true")
        parser.add_argument("--chunk-size", type=int, default=500)

    def handle(self, *args, **options):
        facility_id = options["facility_id"]
        if options["user"]:
            scope_definition = "single-user"
            params = {"facility_id": facility_id, "user_id": options["user"]}
        else:
            scope_definition = "full-facility"
            params = {"facility_id": facility_id}

        controller = MorangoProfileController("facilitydata")
        connection = controller.create_network_connection(options["url"], chunk_size=options["chunk_size"])
        server_certs = connection.get_remote_certificates(facility_id, scope_def_id="full-facility")
        if not server_certs:
            raise CommandError("the server has no full-facility certificate for {}".format(facility_id))
        server_cert = server_certs[0]

        client_cert = None
        for cert in Certificate.objects.filter(scope_definition_id=scope_definition, _private_key__isnull=False):
            if json.loads(cert.scope_params) == params:
                client_cert = cert
                break
        requested = client_cert is None
        if requested:
            if not (options["username"] and options["password"]):
                raise CommandError("no certificate for {} {}: give --username and --password".format(
                    scope_definition, params))
            client_cert = connection.certificate_signing_request(
                server_cert,
                scope_definition,
                params,
                userargs="username={}&facility={}".format(options["username"], facility_id),
                password=options["password"],
            )

        sync_client = connection.create_sync_session(client_cert, server_cert)
        scope = client_cert.get_scope()
        result = {
            "certificate_id": client_cert.id,
            "server_certificate_id": server_cert.id,
            "certificate_requested": requested,
            "sync_session_id": sync_client.sync_session.id,
            "server_instance_id": sync_client.sync_session.server_instance_id,
            "capabilities": sorted(connection.capabilities),
            "pull": None,
            "push": None,
        }
        try:
            if not options["no_pull"]:
                result["pull"] = transfer(sync_client.get_pull_client(), scope.read_filter)
            if not options["no_push"]:
                result["push"] = transfer(sync_client.get_push_client(), scope.write_filter)
        finally:
            connection.close_sync_session(sync_client.sync_session)
            connection.close()
        output(self, result)


def transfer(client, sync_filter):
    client.initialize(sync_filter)
    client.run()
    client.finalize()
    session = client.current_transfer_session
    return {
        "transfer_session_id": session.id,
        "filter": str(sync_filter),
        "records_total": session.records_total,
        "records_transferred": session.records_transferred,
    }
