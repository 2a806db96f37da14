"""The living demo trial: a synthetic NS-DUPI trial in progress, built through the services.

``trialdesk demo`` (:mod:`.commands`) calls :func:`.builder.build`, which screens, randomizes,
dispenses and captures every form through the same services the pages use, from an effect model
stated in ``docs/user_guide.md`` ("Demo trial"). A :class:`.models.DemoMarker` row marks a study
as synthetic; the context processor :func:`.context.synthetic_banner` then puts the SYNTHETIC
DATA banner on every page.
"""
