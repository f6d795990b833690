"""Parses an OpenMetrics exposition from stdin with the Prometheus project's reference parser
(prometheus_client.openmetrics.parser), which raises on anything the format does not allow, and
prints one line per family: "<name> <type> <number of samples>".
"""

import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def main() -> int:
    text = sys.stdin.read()
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as error:  # the parser's ValueError, or anything else it raises
        print(f"not OpenMetrics: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    for family in families:
        print(f"{family.name} {family.type} {len(family.samples)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
