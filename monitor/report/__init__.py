"""Report: the weekly SLO report from the store alone (data, charts, HTML, PDF, delivery,
schedule). May import `engine` and every layer below; `service`, `demo` and `cli` import it."""
