"""Administrative units: the official 34 provinces and 3,321 communes (codes from the statistics
office, carried by the `vietnamadminunits` package), seeded into the database."""
