"""Every core table. Importing this module registers them all on ``SQLModel.metadata``."""

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
