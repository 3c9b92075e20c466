"""The runbook pages, installed as the package `vigil_runbooks` (see setup.py) so that the
default alert links resolve in a wheel or a container too; read the Markdown files here."""
