"""The summary report, bottom up:

- columns: the CSV column names the report, compare and decide read;
- render: the document (Markdown and HTML), tables, figures, the number format, the engine label;
- analysis: what the report computes from the tables (best configurations, scaling, accuracy, decisions);
- plots: the per-model latency and throughput plot;
- sections: each section a function of (document, context), in one ordered list;
- summary: `trtpipe summarize`, from one SummaryInputs value (trtpipe.summary_inputs) to the written files.

This file imports nothing, so `trtpipe.compare` and `trtpipe.decide` use the primitives (render, columns)
without importing the report.
"""
