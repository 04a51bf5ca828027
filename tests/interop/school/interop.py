"""What the management commands share: the models by Morango model name, JSON output, field conversion."""
import json

from django.core.serializers.json import DjangoJSONEncoder
from django.core.management.base import CommandError

from school.models import Classroom
from school.models import Facility
from school.models import Learner
from school.models import LessonProgress

MODELS = {
    "facility": Facility,
    "classroom": Classroom,
    "learner": Learner,
    "lessonprogress": LessonProgress,
}


def model_named(name):
    try:
        return MODELS[name]
    except KeyError:
        raise CommandError("unknown model {!r}; one of {}".format(name, ", ".join(MODELS)))


def fields_from_json(model, text):
    """The JSON object `text` as model field values, each converted as Django would read it from a form (so that a
    datetime given as text is stored and serialized as a datetime)."""
    try:
        values = json.loads(text)
    except ValueError as e:
        raise CommandError("fields must be a JSON object: {}".format(e))
    if not isinstance(values, dict):
        raise CommandError("fields must be a JSON object")
    converted = {}
    for key, value in values.items():
        field = next((f for f in model._meta.concrete_fields if key in (f.name, f.attname)), None)
        if field is None:
            raise CommandError("{} has no field {!r}".format(model.morango_model_name, key))
        converted[field.attname] = value if value is None else field.to_python(value)
    return converted


def output(command, value):
    command.stdout.write(json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True))
