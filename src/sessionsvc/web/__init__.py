"""The web layer: blueprints, errors as HTTP answers, rate limits, the OpenAPI document, the page.

Views are thin: parse the request, call the store or a token function, answer.
No blueprint module imports another; what two of them share lives in a module
without a blueprint (``auth``, ``logins``, ``bodies``, ``errors``, ...).
"""
