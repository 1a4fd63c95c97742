"""Audio event detectors behind one interface (:class:`~synpara.detectors.base.Detector`:
``labels`` and ``predict(windows)``), a ``kind:path`` registry (:data:`~synpara.detectors.base.
DETECTORS`), the AudioSet mapping for AudioSet models (:mod:`~synpara.detectors.audioset`) and
the heuristic steps the detect stage chains (:mod:`~synpara.detectors.rules`)."""
