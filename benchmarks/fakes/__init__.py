"""Stateful fake ad-platform servers, each behind the lowest network layer its official SDK uses (a gRPC channel
for Google Ads, a `requests` transport adapter for Meta, urllib3's `urlopen` for TikTok, a suds HTTP transport
for Microsoft Advertising), with faults injected at that layer.

Each server holds every object's current values, so what a push says it did can be checked against what the
server holds. Used by the fault-injection tests (`tests/faults`) and the chaos benchmark (`benchmarks.faults`);
nothing in the pipeline imports them.
"""
