"""The weblog: static HTML pages that show what was done to an MOUS and how good the products are."""
