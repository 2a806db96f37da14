"""Users, roles, site memberships, API tokens, and the one policy that answers
"may this user see this site, this subject, this allocation?" (:mod:`trialdesk.accounts.policy`).
"""
