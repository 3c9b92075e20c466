"""The weekly SLO report: numbers from the store (`data`), charts, HTML, delivery, schedule."""
