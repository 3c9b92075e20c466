"""Report: the weekly SLO report from the store alone (data, charts, HTML, PDF, delivery,
schedule). A top layer: may import everything below `service`; nothing imports it."""
