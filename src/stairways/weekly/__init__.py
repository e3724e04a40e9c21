"""The weekly routine: the one-pager's figures from the journal (:mod:`.collect`), its
settings (:mod:`.settings`) and its delivery to a folder, a webhook or by email
(:mod:`.deliver`). The page itself is :mod:`stairways.reports.weekly`.
"""
