from django.core.management.base import BaseCommand

from school.interop import output
from school.models import User


class Command(BaseCommand):
    help = "Adds an account that may request certificates: a superuser (any scope) or a learner's (single-user)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("password")
        parser.add_argument("--superuser", action="store_true")
        parser.add_argument("--learner-id", default="")

    def handle(self, *args, **options):
        user = User(username=options["username"], learner_id=options["learner_id"])
        user.is_superuser = user.is_staff = options["superuser"]
        user.set_password(options["password"])
        user.save()
        output(self, {"username": user.username})
