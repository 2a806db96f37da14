"""Randomization and drug supply (the IWRS): list and kit generation (:mod:`.lists`, pure),
sealed import (:mod:`.sealing`), allocation of the next free row of a stratum (:mod:`.allocation`),
kit receipt, dispensing, administration, returns and destruction (:mod:`.supply`), and emergency
unblinding (:mod:`.unblinding`).

Arms are read only through functions that first ask :mod:`trialdesk.accounts.policy`; blinded
users see randomization numbers and kit numbers, never an arm.
"""
