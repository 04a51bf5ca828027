from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_migrate


def load_scope_definitions(sender, **kwargs):
    """Morango's scope definitions, loaded with the tables (Morango would load them on first use, printing to
    standard output)."""
    from django.core.management import call_command

    call_command("loaddata", "scopedefinitions", verbosity=0)


class SchoolConfig(AppConfig):
    name = "school"
    default_auto_field = "django.db.models.AutoField"

    def ready(self):
        post_migrate.connect(load_scope_definitions, sender=self)
        # Morango advertises GZIP_BUFFER_POST whenever Python has `gzip`; a deployment without it is emulated by
        # taking it out of the set every Morango module shares (client header, server info, parsers).
        if not settings.INTEROP_GZIP_BUFFER_POST:
            import sys

            from morango.constants.capabilities import GZIP_BUFFER_POST
            from morango.utils import CAPABILITIES

            CAPABILITIES.discard(GZIP_BUFFER_POST)
            assert "morango.api.viewsets" not in sys.modules and "morango.sync.syncsession" not in sys.modules
