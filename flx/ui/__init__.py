"""`flx ui`: web pages over the control schema (pipelines, runs, a run, charts, alerts) and `/metrics`.

Starlette routes render Jinja2 templates; Chart.js, vendored under `static/vendor/`, draws the charts. The
`ui` extra installs the web stack: `pip install 'flx[ui]'`.
"""
