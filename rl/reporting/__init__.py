"""The daily performance report: what the account spent and bought yesterday and over the trailing 28 days, against
its target CPA, how the budgets paced, and the bid plan pushed for tomorrow and why.

Pure Python (no Dagster, no DuckDB): the caller reads the marts, the plan and the push audit and hands them over
as polars frames; `report.build_report` returns the tables, the PNG charts and one self-contained HTML page.
"""
