from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Dimension(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIMENSION_UNSPECIFIED: _ClassVar[Dimension]
    DIMENSION_CONSUMER: _ClassVar[Dimension]
    DIMENSION_MODEL: _ClassVar[Dimension]
    DIMENSION_RULE: _ClassVar[Dimension]
    DIMENSION_STATUS: _ClassVar[Dimension]

class Bucket(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BUCKET_UNSPECIFIED: _ClassVar[Bucket]
    BUCKET_NONE: _ClassVar[Bucket]
    BUCKET_HOUR: _ClassVar[Bucket]
    BUCKET_DAY: _ClassVar[Bucket]
    BUCKET_WEEK: _ClassVar[Bucket]
    BUCKET_MONTH: _ClassVar[Bucket]
DIMENSION_UNSPECIFIED: Dimension
DIMENSION_CONSUMER: Dimension
DIMENSION_MODEL: Dimension
DIMENSION_RULE: Dimension
DIMENSION_STATUS: Dimension
BUCKET_UNSPECIFIED: Bucket
BUCKET_NONE: Bucket
BUCKET_HOUR: Bucket
BUCKET_DAY: Bucket
BUCKET_WEEK: Bucket
BUCKET_MONTH: Bucket

class GetQuotaStatusRequest(_message.Message):
    __slots__ = ("consumer", "rule")
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    consumer: str
    rule: str
    def __init__(self, consumer: _Optional[str] = ..., rule: _Optional[str] = ...) -> None: ...

class QuotaStatus(_message.Message):
    __slots__ = ("consumer", "rule", "cycle", "time_zone", "window_id", "window_start", "window_end", "reset_in_seconds", "configured_quota", "quota", "quota_overridden", "topup", "limit", "used", "reserved", "remaining", "unit")
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    CYCLE_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    RESET_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CONFIGURED_QUOTA_FIELD_NUMBER: _ClassVar[int]
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    QUOTA_OVERRIDDEN_FIELD_NUMBER: _ClassVar[int]
    TOPUP_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    consumer: str
    rule: str
    cycle: str
    time_zone: str
    window_id: str
    window_start: str
    window_end: str
    reset_in_seconds: int
    configured_quota: int
    quota: int
    quota_overridden: bool
    topup: int
    limit: int
    used: int
    reserved: int
    remaining: int
    unit: str
    def __init__(self, consumer: _Optional[str] = ..., rule: _Optional[str] = ..., cycle: _Optional[str] = ..., time_zone: _Optional[str] = ..., window_id: _Optional[str] = ..., window_start: _Optional[str] = ..., window_end: _Optional[str] = ..., reset_in_seconds: _Optional[int] = ..., configured_quota: _Optional[int] = ..., quota: _Optional[int] = ..., quota_overridden: _Optional[bool] = ..., topup: _Optional[int] = ..., limit: _Optional[int] = ..., used: _Optional[int] = ..., reserved: _Optional[int] = ..., remaining: _Optional[int] = ..., unit: _Optional[str] = ...) -> None: ...

class GetQuotaStatusResponse(_message.Message):
    __slots__ = ("statuses",)
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    statuses: _containers.RepeatedCompositeFieldContainer[QuotaStatus]
    def __init__(self, statuses: _Optional[_Iterable[_Union[QuotaStatus, _Mapping]]] = ...) -> None: ...

class AdjustQuotaRequest(_message.Message):
    __slots__ = ("consumer", "rule", "set_quota", "add_tokens", "reason")
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    SET_QUOTA_FIELD_NUMBER: _ClassVar[int]
    ADD_TOKENS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    consumer: str
    rule: str
    set_quota: int
    add_tokens: int
    reason: str
    def __init__(self, consumer: _Optional[str] = ..., rule: _Optional[str] = ..., set_quota: _Optional[int] = ..., add_tokens: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class AdjustQuotaResponse(_message.Message):
    __slots__ = ("status", "audit")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AUDIT_FIELD_NUMBER: _ClassVar[int]
    status: QuotaStatus
    audit: AuditEntry
    def __init__(self, status: _Optional[_Union[QuotaStatus, _Mapping]] = ..., audit: _Optional[_Union[AuditEntry, _Mapping]] = ...) -> None: ...

class ResetQuotaRequest(_message.Message):
    __slots__ = ("consumer", "rule", "reason")
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    consumer: str
    rule: str
    reason: str
    def __init__(self, consumer: _Optional[str] = ..., rule: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ResetQuotaResponse(_message.Message):
    __slots__ = ("statuses", "audit")
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    AUDIT_FIELD_NUMBER: _ClassVar[int]
    statuses: _containers.RepeatedCompositeFieldContainer[QuotaStatus]
    audit: _containers.RepeatedCompositeFieldContainer[AuditEntry]
    def __init__(self, statuses: _Optional[_Iterable[_Union[QuotaStatus, _Mapping]]] = ..., audit: _Optional[_Iterable[_Union[AuditEntry, _Mapping]]] = ...) -> None: ...

class UsageFilter(_message.Message):
    __slots__ = ("consumer", "model", "rule", "status")
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    consumer: str
    model: str
    rule: str
    status: str
    def __init__(self, consumer: _Optional[str] = ..., model: _Optional[str] = ..., rule: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...

class QueryUsageRequest(_message.Message):
    __slots__ = ("start", "end", "time_zone", "group_by", "bucket", "filter")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    start: str
    end: str
    time_zone: str
    group_by: _containers.RepeatedScalarFieldContainer[Dimension]
    bucket: Bucket
    filter: UsageFilter
    def __init__(self, start: _Optional[str] = ..., end: _Optional[str] = ..., time_zone: _Optional[str] = ..., group_by: _Optional[_Iterable[_Union[Dimension, str]]] = ..., bucket: _Optional[_Union[Bucket, str]] = ..., filter: _Optional[_Union[UsageFilter, _Mapping]] = ...) -> None: ...

class UsageRow(_message.Message):
    __slots__ = ("bucket_start", "bucket_end", "consumer", "model", "rule", "status", "requests", "refused_requests", "input_tokens", "output_tokens", "total_tokens", "cached_input_tokens", "reasoning_tokens", "cost_micros")
    BUCKET_START_FIELD_NUMBER: _ClassVar[int]
    BUCKET_END_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    REFUSED_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    REASONING_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_MICROS_FIELD_NUMBER: _ClassVar[int]
    bucket_start: str
    bucket_end: str
    consumer: str
    model: str
    rule: str
    status: str
    requests: int
    refused_requests: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cached_input_tokens: int
    reasoning_tokens: int
    cost_micros: int
    def __init__(self, bucket_start: _Optional[str] = ..., bucket_end: _Optional[str] = ..., consumer: _Optional[str] = ..., model: _Optional[str] = ..., rule: _Optional[str] = ..., status: _Optional[str] = ..., requests: _Optional[int] = ..., refused_requests: _Optional[int] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ..., cached_input_tokens: _Optional[int] = ..., reasoning_tokens: _Optional[int] = ..., cost_micros: _Optional[int] = ...) -> None: ...

class QueryUsageResponse(_message.Message):
    __slots__ = ("rows",)
    ROWS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[UsageRow]
    def __init__(self, rows: _Optional[_Iterable[_Union[UsageRow, _Mapping]]] = ...) -> None: ...

class ListAuditRequest(_message.Message):
    __slots__ = ("consumer", "limit")
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    consumer: str
    limit: int
    def __init__(self, consumer: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("id", "time", "who", "action", "consumer", "rule", "window_id", "before", "after", "reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    WHO_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_ID_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    time: str
    who: str
    action: str
    consumer: str
    rule: str
    window_id: str
    before: int
    after: int
    reason: str
    def __init__(self, id: _Optional[str] = ..., time: _Optional[str] = ..., who: _Optional[str] = ..., action: _Optional[str] = ..., consumer: _Optional[str] = ..., rule: _Optional[str] = ..., window_id: _Optional[str] = ..., before: _Optional[int] = ..., after: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class ListAuditResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[AuditEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[AuditEntry, _Mapping]]] = ...) -> None: ...
