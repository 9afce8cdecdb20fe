"""``rueckkanal status-web``: the city's own status page, fed from the outbox into its own database.

Pure parts: :mod:`.texts` (every word), :mod:`.page` (what a page shows), :mod:`.html` (markup),
:mod:`.ratelimit`; the token and GiroCode rules are in the core (:mod:`rueckkanal.tracking`, :mod:`rueckkanal.epc`).
Shell: :mod:`.links` (minting and resolving links, QR images), :mod:`.consumer` (the outbox reader),
:mod:`.http` (the public pages and the internal API), :mod:`.main` (composition and the CLI).
"""
