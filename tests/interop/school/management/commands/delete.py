from django.core.management.base import BaseCommand

from school.interop import model_named
from school.interop import output


class Command(BaseCommand):
    help = "Deletes one record (and what cascades from it): soft by default, --hard to erase it everywhere."

    def add_arguments(self, parser):
        parser.add_argument("model")
        parser.add_argument("id")
        parser.add_argument("--hard", action="store_true")

    def handle(self, *args, **options):
        model = model_named(options["model"])
        record = model.objects.get(id=options["id"])
        record.delete(hard_delete=options["hard"])
        output(self, {"id": options["id"], "hard": options["hard"]})
