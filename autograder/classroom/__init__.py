"""The classroom room: a class on one server.

    hub         JupyterHub with nbgrader's Assignments tab and Formgrader, accounts from a roster
    exchange    nbgrader's exchange from the instructor's side: release, collect, release feedback
    roster      the class list (id,name,role,lms_id) -> accounts and the gradebook
    studentenv  the students' environment, built from the student edition

It sits on top: it uses course/, grading/ and reports/; nothing imports it but the CLI.
"""
