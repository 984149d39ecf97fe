"""Every core table. Importing this module registers them all on ``SQLModel.metadata``.

Pydantic builds a SQLModel class's validator and serializer when the class is first used, not when it is
defined (``defer_build``, set here for every SQLModel class of the process: the core's tables and the
plugins', which are defined after this runs). Defining the ~70 tables then costs only their SQLAlchemy
mapping and field collection; a start saves about 0.1 s of CPU. SQLModel tables are not validated on
construction anyway; ``model_validate``, serialising and FastAPI's adapters build the schema on first use
(pydantic >= 2.14 serialises concurrent first uses).
"""

from core.models import _defer  # noqa: F401  (first: the tables below are defined deferred)
from core.models.appointment import (  # noqa: F401
    Appointment,
    AppointmentChange,
    AppointmentOption,
    AppointmentSeries,
    WaitlistEntry,
)
from core.models.audit import AuditEntry, AuditHead
from core.models.auth import (  # noqa: F401
    AccessLog,
    ApiToken,
    LoginAttempt,
    LoginSession,
    Membership,
    PasswordHistory,
    Role,
    RolePermission,
    User,
    UserPermissionOverride,
)
from core.models.clinic import Clinic
from core.models.labs import (  # noqa: F401
    DentalLabCase,
    LabOrder,
    LabOrderLine,
    LabProvider,
    LabResult,
    LabResultRevision,
    LabTest,
    LabTestService,
    Specimen,
)
from core.models.messaging import (  # noqa: F401
    InboundReply,
    Message,
    MessageBatch,
    MessageRule,
    MessageTemplate,
    MessagingSettings,
    OptOut,
    QuietHours,
)
from core.models.outbox import JobRun, OutboxItem, OutboxStatus
from core.models.patient import (  # noqa: F401
    ChartSequence,
    Patient,
    PatientAlert,
    PatientConsent,
    PatientEmail,
    PatientGuardian,
    PatientIdentifier,
    PatientMerge,
    PatientPhone,
    PatientSearchKey,
)
from core.models.plugin import PluginHealth, PluginState, RuntimeGeneration
from core.models.records import ClinicalRecord, RecordSignature, RecordSigningSession  # noqa: F401
from core.models.schedule import (  # noqa: F401
    ClinicDay,
    ClinicHours,
    DoctorSchedule,
    Room,
    ScheduleBreak,
    ScheduleException,
)

__all__ = ["AuditEntry", "AuditHead", "Clinic", "JobRun", "OutboxItem", "OutboxStatus", "PluginHealth", "PluginState",
           "RuntimeGeneration"]
