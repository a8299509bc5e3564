"""The backends that run a pool's tasks: ``process``, ``thread`` and ``serial`` here, ``dask``
in :mod:`workhorse._dask`. :mod:`workhorse._backend` states their contract and
:mod:`workhorse._registry` finds them by name; :mod:`workhorse._scheduler` holds what they
share."""
