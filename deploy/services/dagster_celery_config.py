"""Celery settings the workers of deploy/compose.yaml and the Helm values import (dagster_celery reads the module
`dagster_celery_config` from the path). `mobile-mlops services up` writes its own copy with loopback URLs; the
late-ack settings equal assets.build.CELERY_SETTINGS."""
import os

broker_url = os.environ["MOBILE_MLOPS_CELERY_BROKER"]
result_backend = os.environ["MOBILE_MLOPS_CELERY_BACKEND"]
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
