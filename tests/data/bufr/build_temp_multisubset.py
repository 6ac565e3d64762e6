"""Re-encode the first three ascents of ``temp_sample.bufr`` as one TEMP message of three uncompressed subsets.

Writes ``temp_multisubset.bufr`` beside this file: BUFR edition 4, master table 13, data category 2, template
309007 (the TEMP sequence of the source messages, without their quality-information part), one subset per
ascent with its own level count. Every value (station, time, position, cloud group and every level's pressure,
significance, geopotential, temperature, dew point and wind) is copied from the source messages; values missing
there stay missing. Run from the repository root: ``python tests/data/bufr/build_temp_multisubset.py``.
"""

from pathlib import Path

import eccodes
import numpy as np

HERE = Path(__file__).resolve().parent
SCALARS = ("blockNumber", "stationNumber", "radiosondeType", "radiosondeComputationalMethod", "year", "month", "day",
           "hour", "minute", "latitude", "longitude", "heightOfStation", "cloudCoverTotal",
           "verticalSignificanceSurfaceObservations", "cloudAmount", "heightOfBaseOfCloud")
LEVELS = ("pressure", "verticalSoundingSignificance", "nonCoordinateGeopotential", "airTemperature",
          "dewpointTemperature", "windDirection", "windSpeed")
FLOATS = {"latitude", "longitude", "heightOfStation", "heightOfBaseOfCloud", "pressure", "nonCoordinateGeopotential",
          "airTemperature", "dewpointTemperature", "windSpeed"}


def _ascents(path: Path, count: int) -> list[list[tuple[str, float]]]:
    """(key, value) in template order for each of the first ``count`` messages."""
    out = []
    with open(path, "rb") as f:
        for _ in range(count):
            h = eccodes.codes_bufr_new_from_file(f)
            eccodes.codes_set(h, "unpack", 1)
            vals = [(k, eccodes.codes_get_array(h, f"#1#{k}")[0]) for k in SCALARS]
            vals += [("cloudType", eccodes.codes_get_array(h, f"#{j}#cloudType")[0]) for j in (1, 2, 3)]
            levels = {k: eccodes.codes_get_array(h, k) for k in LEVELS}
            vals += [(k, levels[k][i]) for i in range(len(levels["pressure"])) for k in LEVELS]
            out.append(vals)
            eccodes.codes_release(h)
    return out


def main() -> None:
    ascents = _ascents(HERE / "temp_sample.bufr", 3)
    b = eccodes.codes_bufr_new_from_samples("BUFR4")
    for key, val in (("masterTablesVersionNumber", 13), ("localTablesVersionNumber", 0), ("bufrHeaderCentre", 98),
                     ("dataCategory", 2), ("internationalDataSubCategory", 4), ("typicalYear", 2008),
                     ("typicalMonth", 12), ("typicalDay", 8), ("typicalHour", 12), ("typicalMinute", 0),
                     ("numberOfSubsets", len(ascents)), ("observedData", 1), ("compressedData", 0)):
        eccodes.codes_set(b, key, val)
    n_levels = [sum(k == "pressure" for k, _ in a) for a in ascents]
    eccodes.codes_set_array(b, "inputDelayedDescriptorReplicationFactor", n_levels)
    eccodes.codes_set_array(b, "unexpandedDescriptors", [309007])
    rank: dict[str, int] = {}
    for key, val in (kv for a in ascents for kv in a):  # ranks run on across uncompressed subsets
        rank[key] = rank.get(key, 0) + 1
        if val in (eccodes.CODES_MISSING_DOUBLE, eccodes.CODES_MISSING_LONG) or np.isnan(val):
            continue
        eccodes.codes_set(b, f"#{rank[key]}#{key}", float(val) if key in FLOATS else int(val))
    eccodes.codes_set(b, "pack", 1)
    with open(HERE / "temp_multisubset.bufr", "wb") as f:
        eccodes.codes_write(b, f)
    eccodes.codes_release(b)


if __name__ == "__main__":
    main()
