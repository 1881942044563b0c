"""The planner's house and heat-pump models fitted from the site's own measured history, with checks that keep
a bad fit out of the plan (`fit` for the maths, `hours`/`history` for the data, `accepted` for what is in force,
`run` for one fit from the store, `cli` for `hearth model`)."""
