"""The school's data, mirroring the Rust example's profile (examples/school/entities.rs): the same model names,
partitions, source ids and field names, so that records travel between the two unchanged.

Like Kolibri, the facility's record id is its dataset id, which is the id of the facility's root certificate, so
that every partition of the school starts with it.
"""
from django.contrib.auth.models import AbstractUser
from django.db import models

from morango.models.core import SyncableModel
from morango.models.manager import SyncableModelManager


class SchoolModel(SyncableModel):
    morango_profile = "facilitydata"

    objects = SyncableModelManager()

    class Meta:
        abstract = True


class Facility(SchoolModel):
    """A school: partition `${id}:allusers-ro`, source id = dataset id = record id."""

    morango_model_name = "facility"

    dataset_id = models.CharField(max_length=32)
    name = models.CharField(max_length=100)

    def calculate_source_id(self):
        return self.dataset_id

    def calculate_partition(self):
        return "{}:allusers-ro".format(self.ID_PLACEHOLDER)

    @staticmethod
    def compute_namespaced_id(partition_value, source_id_value, model_name):
        return source_id_value


class Classroom(SchoolModel):
    """A classroom, or a group inside one (`parent`, the self-referential foreign key)."""

    morango_model_name = "classroom"

    facility = models.ForeignKey(Facility, on_delete=models.CASCADE)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE)
    name = models.CharField(max_length=100)

    def calculate_source_id(self):
        return "{}:{}".format(self.facility_id, self.name)

    def calculate_partition(self):
        return "{}:allusers-ro".format(self.facility_id)


class Learner(SchoolModel):
    """A learner: readable by the learner's own devices (`user-ro`)."""

    morango_model_name = "learner"

    facility = models.ForeignKey(Facility, on_delete=models.CASCADE)
    username = models.CharField(max_length=100)
    full_name = models.CharField(max_length=200)
    classroom = models.ForeignKey(Classroom, null=True, blank=True, on_delete=models.SET_NULL)
    birth_date = models.DateField(null=True, blank=True)
    points = models.IntegerField(default=0)
    active = models.BooleanField(default=True)

    def calculate_source_id(self):
        return "{}:{}".format(self.facility_id, self.username)

    def calculate_partition(self):
        return "{}:user-ro:{}".format(self.facility_id, self.ID_PLACEHOLDER)


class LessonProgress(SchoolModel):
    """How far a learner got in a lesson: written by the learner's devices (`user-rw`)."""

    morango_model_name = "lessonprogress"

    facility = models.ForeignKey(Facility, on_delete=models.CASCADE)
    learner = models.ForeignKey(Learner, on_delete=models.CASCADE)
    lesson = models.CharField(max_length=100)
    progress = models.FloatField(default=0.0)
    started_at = models.DateTimeField(null=True, blank=True)
    details = models.JSONField(null=True, blank=True)

    def calculate_source_id(self):
        return "{}:{}".format(self.learner_id, self.lesson)

    def calculate_partition(self):
        return "{}:user-rw:{}".format(self.facility_id, self.learner_id)


class User(AbstractUser):
    """Who may obtain certificates (not synced): superusers any scope, a learner's account the single-user scope of
    that learner."""

    learner_id = models.CharField(max_length=32, blank=True)

    def has_morango_certificate_scope_permission(self, scope_definition_id, scope_params):
        if self.is_superuser:
            return True
        return (
            scope_definition_id == "single-user"
            and bool(self.learner_id)
            and scope_params.get("user_id") == self.learner_id
        )
