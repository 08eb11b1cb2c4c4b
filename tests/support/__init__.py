"""Test helpers, one package (import as ``from support.<module> import ...``):

- ``helpers``: constants (NOW, service ids, REPO), hook request builders, fixture prefetch, response checks;
- ``clinical``: raw FHIR resource builders, the snapshot as the service builds it, and the rules run
  strictly (``findings``, ``fired``, ``only``);
- ``orders``: draft orders, order-hook patients and calls, the expected order cards;
- ``live``: the service as a real gunicorn process, and playing the EHR against the FHIR server;
- ``security``: keys, JWKS, token minting and a JWT-wired app.
"""
