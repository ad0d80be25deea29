"""Parses Prometheus text exposition (read from stdin) with the Prometheus project's
own Python client, and prints the samples as JSON: one object per sample with the
family's name and type, the sample's name, labels and value."""
import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families

samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        value = s.value
        if isinstance(value, float) and (math.isinf(value) or math.isnan(value)):
            value = str(value)
        samples.append(
            {
                "family": family.name,
                "type": family.type,
                "name": s.name,
                "labels": s.labels,
                "value": value,
            }
        )
json.dump(samples, sys.stdout)
