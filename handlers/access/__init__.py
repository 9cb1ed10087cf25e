"""Who may do what: the roles, the one permission table every HTTP route, console page and CLI verb consults, and
the decisions that need more than a role (a department liaison sees only incidents that involve their department;
close and regrade need a second factor).

May import: pingan.schemas only. Never: another handlers sub-package, the store, the web layer or any I/O library;
web/ authenticates the person and asks these functions whether they may act.
"""
