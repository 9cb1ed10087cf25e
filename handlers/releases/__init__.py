"""Public information releases (信息发布, issue 17), pure: drafting a release from a plan's template and the
incident's facts (drafting.py), and the workflow's rules, four eyes included (rules.py). The store and the log are
core/releases.py's business."""
