"""The data engine: label a folder with a chosen model, review and correct, export COCO and YOLO.

One job per module:

- `intake`: folders, zips and uploads, and their limits; `decode` reads one file or says why not;
- `store` and `records`: the SQLite job store and its rows;
- `labelers`: a model key and class names -> "label one image -> annotation rows";
- `choose`: score candidate labelers against ground truth, best first;
- `job`: run a job with progress, resumable;
- `edits`: remove, relabel, add, accept; `review`: what the review gallery shows;
- `exports`: COCO, YOLO, report.json; `cli`: ``python -m playground label``.
"""
