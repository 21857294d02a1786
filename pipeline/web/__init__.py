"""Browser-facing files: the tracking script (``sdk.js``, served by the collector at
``/v1/sdk.js``) and the demo page (``demo.html``, served by the reader at ``/demo`` when
``settings.demo_page`` is on). docs/javascript.md documents the script."""
