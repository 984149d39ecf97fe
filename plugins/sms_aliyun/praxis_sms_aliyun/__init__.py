"""Praxis messaging plugin: SMS to patients through Aliyun (Alibaba Cloud) SMS, China."""

__version__ = "1.0.0"
