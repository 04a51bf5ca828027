import socketserver
import sys

from django.core.management.base import BaseCommand
from django.core.servers.basehttp import WSGIRequestHandler
from django.core.servers.basehttp import WSGIServer
from django.core.servers.basehttp import get_internal_wsgi_application


class ThreadedWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class Command(BaseCommand):
    help = (
        "Serves Morango's HTTP API on 127.0.0.1 with Django's development server (threaded, as runserver), on "
        "--port (0: a free port). Prints 'Listening on http://127.0.0.1:PORT/' once it accepts connections."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=0)

    def handle(self, *args, **options):
        handler = get_internal_wsgi_application()
        httpd = ThreadedWSGIServer(("127.0.0.1", options["port"]), WSGIRequestHandler, ipv6=False)
        httpd.set_app(handler)
        host, port = httpd.server_address[:2]
        sys.stdout.write("Listening on http://{}:{}/\n".format(host, port))
        sys.stdout.flush()
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            httpd.server_close()
