import datetime

from django.core.management.base import BaseCommand
from django.db import transaction

from school.interop import output
from school.models import Classroom
from school.models import Facility
from school.models import Learner
from school.models import LessonProgress


class Command(BaseCommand):
    help = (
        "Seeds a facility: a classroom with a group inside it, three learners and lesson progress using every "
        "field type (string, integer, float, boolean, UTC datetime, date, nullable and self-referential foreign "
        "keys, JSON). Prints the ids."
    )

    def add_arguments(self, parser):
        parser.add_argument("facility_id")

    def handle(self, *args, **options):
        with transaction.atomic():
            facility = Facility.objects.get(id=options["facility_id"])
            class3 = Classroom.objects.create(facility=facility, name="Class 3")
            circle = Classroom.objects.create(facility=facility, name="Reading circle", parent=class3)
            learners = {}
            for username, full_name, classroom, birth, points, active in [
                ("ada", "Ada Lovelace", class3, datetime.date(2015, 12, 10), 12, True),
                ("alan", "Alan Turing", circle, datetime.date(2016, 6, 23), 0, True),
                ("grace", "Grace Hopper", None, None, -3, False),
            ]:
                learners[username] = Learner.objects.create(
                    facility=facility,
                    username=username,
                    full_name=full_name,
                    classroom=classroom,
                    birth_date=birth,
                    points=points,
                    active=active,
                )
            progress = {}
            for username, lesson, value, started, details in [
                ("ada", "Counting", 1.0, datetime.datetime(2024, 3, 1, 9, 30, 15, 123456, datetime.timezone.utc),
                 {"answers": [1, 2, 3], "hints": 0, "note": "caf\u00e9 \u2713"}),
                ("ada", "Fractions", 0.1, None, None),
                ("alan", "Shapes", 0.333, datetime.datetime(2024, 3, 2, 23, 59, 59, 999000, datetime.timezone.utc),
                 {"nested": {"ok": True, "ratio": 2.5}}),
            ]:
                row = LessonProgress.objects.create(
                    facility=facility,
                    learner=learners[username],
                    lesson=lesson,
                    progress=value,
                    started_at=started,
                    details=details,
                )
                progress["{}:{}".format(username, lesson)] = row.id
        output(
            self,
            {
                "classrooms": {"Class 3": class3.id, "Reading circle": circle.id},
                "learners": {name: learner.id for name, learner in learners.items()},
                "lessonprogress": progress,
            },
        )
