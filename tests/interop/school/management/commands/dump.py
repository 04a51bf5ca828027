import json

from django.core.management.base import BaseCommand

from morango.models.certificates import Certificate
from morango.models.core import DatabaseMaxCounter
from morango.models.core import InstanceIDModel
from morango.models.core import RecordMaxCounter
from morango.models.core import Store
from school.interop import MODELS
from school.interop import output


class Command(BaseCommand):
    help = (
        "Prints this instance's sync state as JSON: the store (record JSON parsed, deletion flags, versions and "
        "record-max counters of every record), the database-max counters, the certificates and the application "
        "rows (as Morango serializes them)."
    )

    def handle(self, *args, **options):
        instance, _ = InstanceIDModel.get_or_create_current_instance()
        counters = {}
        for rmc in RecordMaxCounter.objects.all():
            counters.setdefault(rmc.store_model_id, {})[rmc.instance_id] = rmc.counter
        store = []
        for row in Store.objects.order_by("id"):
            store.append(
                {
                    "id": row.id,
                    "model_name": row.model_name,
                    "profile": row.profile,
                    "partition": row.partition,
                    "source_id": row.source_id,
                    "serialized": json.loads(row.serialized) if row.serialized else None,
                    "deleted": row.deleted,
                    "hard_deleted": row.hard_deleted,
                    "last_saved_instance": row.last_saved_instance,
                    "last_saved_counter": row.last_saved_counter,
                    "conflicting_serialized_data": row.conflicting_serialized_data,
                    "self_ref_fk": row._self_ref_fk,
                    "dirty_bit": row.dirty_bit,
                    "deserialization_error": row.deserialization_error,
                    "rmc": counters.get(row.id, {}),
                }
            )
        app = {}
        for name, model in MODELS.items():
            # A JSON round trip gives the values as the store holds them (DjangoJSONEncoder: ms datetimes, ...).
            app[name] = [row.serialize() for row in model.objects.order_by("id")]
        output(
            self,
            {
                "instance_id": instance.id,
                "counter": instance.counter,
                "store": store,
                "dmc": [
                    {"partition": d.partition, "instance_id": d.instance_id, "counter": d.counter}
                    for d in DatabaseMaxCounter.objects.order_by("partition", "instance_id")
                ],
                "certificates": [
                    {
                        "id": c.id,
                        "parent": c.parent_id,
                        "scope_definition": c.scope_definition_id,
                        "scope_params": json.loads(c.scope_params),
                        "owned": c.private_key is not None,
                    }
                    for c in Certificate.objects.order_by("id")
                ],
                "app": app,
            },
        )
