"""Readers on small files written here by hand in each format, and file-level errors."""

from __future__ import annotations

import netCDF4
import numpy as np
import pytest

from healda_core.errors import InputError
from healda_core.obs import vocab
from healda_core.obs.raw import NAT
from healda_core.obs.readers import read_obs_file

T = 1704067200
IODA_FILL = np.float32(-3.3687953e38)


def _var(node, name, dtype, dims, data, **atts):
    v = node.createVariable(name, dtype, dims, fill_value=atts.pop("_FillValue", None))
    v.setncatts(atts)
    v[:] = data
    return v


def write_canonical_by_hand(path, with_fill=True):
    with netCDF4.Dataset(path, "w") as ds:
        ds.featureType = "point"
        ds.createDimension("obs", 3)
        _var(ds, "time", "i8", ("obs",), np.array([T, T + 60, T - 60]), units="seconds since 1970-01-01T00:00:00Z")
        _var(ds, "lat", "f4", ("obs",), [10.0, 20.0, -1.0e20 if with_fill else 5.0], units="degrees_north",
             _FillValue=np.float32(-1.0e20))
        _var(ds, "lon", "f4", ("obs",), [30.0, 40.0, 50.0], units="degrees_east")
        _var(ds, "value", "f4", ("obs",), [230.0, 250.0, 101000.0], units="1")
        _var(ds, "sensor", "u1", ("obs",), [2, 6, 6], flag_values=np.array([2, 6], np.uint8),
             flag_meanings="amsua conv")
        _var(ds, "channel", "u2", ("obs",), [7, 6, 4])
        _var(ds, "platform", "u1", ("obs",), [15, 255, 255], _FillValue=np.uint8(255))
        for n in ("scan_angle", "sat_zenith_angle", "solar_zenith_angle"):
            _var(ds, n, "f4", ("obs",), [5.0, np.nan, np.nan], units="degree", _FillValue=np.float32(np.nan))
        _var(ds, "pressure", "f4", ("obs",), [np.nan, 50000.0, 101000.0], units="Pa", _FillValue=np.float32(np.nan))
        _var(ds, "height", "f4", ("obs",), [np.nan, 5500.0, 10.0], units="m", _FillValue=np.float32(np.nan))
        _var(ds, "obs_type", "u2", ("obs",), [0, 120, 181])


def test_canonical_reader(tmp_path):
    p = tmp_path / "raw.nc"
    write_canonical_by_hand(p)
    raw, fmt = read_obs_file(p)
    assert fmt == "canonical" and len(raw) == 3
    assert raw.time_ns.tolist() == [T * 10**9, (T + 60) * 10**9, (T - 60) * 10**9]
    assert raw.sensor.tolist() == [2, 6, 6] and raw.channel.tolist() == [7, 6, 4]
    assert raw.platform[0] == 15 and raw.platform[1] == -1
    assert np.isnan(raw.lat[2])  # _FillValue honoured
    np.testing.assert_allclose(raw.pressure_hpa[1:], [500.0, 1010.0])  # Pa -> hPa
    assert np.isnan(raw.pressure_hpa[0]) and np.isnan(raw.scan_angle[1])


def write_ioda_radiance(path, channel_meta=True):
    with netCDF4.Dataset(path, "w") as ds:
        ds.sensor, ds.platform = "atms", "n20"
        ds.datetimeReference = "2024-01-01T00:00:00Z"
        ds.createDimension("Location", 2)
        ds.createDimension("Channel", 3)
        _var(ds, "Channel", "i4" if channel_meta else "f4", ("Channel",), [1, 2, 3])
        md, ov = ds.createGroup("MetaData"), ds.createGroup("ObsValue")
        ds.createGroup("ObsError"), ds.createGroup("PreQC")
        _var(md, "dateTime", "i8", ("Location",), [T - 100, T + 100], units="seconds since 1970-01-01T00:00:00Z")
        _var(md, "latitude", "f4", ("Location",), [1.0, 2.0], units="degrees_north")
        _var(md, "longitude", "f4", ("Location",), [3.0, 4.0], units="degrees_east")
        if channel_meta:
            _var(md, "sensorChannelNumber", "i4", ("Channel",), [5, 6, 7])
        _var(md, "sensorScanAngle", "f4", ("Location",), [-10.0, 10.0])
        _var(md, "sensorZenithAngle", "f4", ("Location",), [-12.0, 12.0])
        _var(md, "solarZenithAngle", "f4", ("Location",), [40.0, 50.0])
        _var(md, "satelliteIdentifier", "i4", ("Location",), [225, 224])  # WMO: n20, npp
        _var(ov, "brightnessTemperature", "f4", ("Location", "Channel"),
             [[200.0, 210.0, IODA_FILL], [220.0, 230.0, 240.0]], _FillValue=IODA_FILL)


def test_ioda_radiance(tmp_path):
    p = tmp_path / "atms_n20_obs.nc"
    write_ioda_radiance(p)
    raw, fmt = read_obs_file(p)
    assert fmt == "ioda" and len(raw) == 6
    assert raw.sensor.tolist() == [0] * 6
    assert raw.channel.tolist() == [5, 6, 7, 5, 6, 7]
    assert raw.platform.tolist() == [25] * 3 + [26] * 3
    assert np.isnan(raw.value[2]) and raw.value[3] == 220.0  # sentinel -> NaN
    assert raw.scan_angle.tolist() == [-10.0] * 3 + [10.0] * 3
    assert raw.time_ns[0] == (T - 100) * 10**9 and raw.cycle_times == [T]


def test_ioda_radiance_channel_from_float_coordinate(tmp_path):
    """Without MetaData/sensorChannelNumber, the Channel coordinate (often stored as float) gives the channels."""
    p = tmp_path / "atms_n20_obs.nc"
    write_ioda_radiance(p, channel_meta=False)
    raw, _ = read_obs_file(p)
    assert raw.channel.tolist() == [1, 2, 3, 1, 2, 3]


def write_ioda_conv(path):
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("Location", 3)
        md, ov, ot = ds.createGroup("MetaData"), ds.createGroup("ObsValue"), ds.createGroup("ObsType")
        ds.createGroup("ObsError"), ds.createGroup("PreQC")
        _var(md, "dateTime", "i8", ("Location",), [T, T + 1, -9223372036854775806],
             units="seconds since 1970-01-01T00:00:00Z")
        _var(md, "latitude", "f4", ("Location",), [1.0, 2.0, 3.0])
        _var(md, "longitude", "f4", ("Location",), [3.0, 4.0, 5.0])
        _var(md, "pressure", "f4", ("Location",), [85000.0, IODA_FILL, 50000.0])
        _var(md, "height", "f4", ("Location",), [IODA_FILL, 3000.0, 5500.0])
        _var(ov, "airTemperature", "f4", ("Location",), [280.0, 270.0, 250.0])
        _var(ov, "windEastward", "f4", ("Location",), [1.0, 2.0, 3.0])
        _var(ot, "airTemperature", "i4", ("Location",), [120, 130, 120])
        _var(ot, "windEastward", "i4", ("Location",), [220, 230, 220])


def test_ioda_conventional(tmp_path):
    p = tmp_path / "sondes.nc"
    write_ioda_conv(p)
    raw, fmt = read_obs_file(p)
    assert fmt == "ioda" and len(raw) == 6
    assert raw.channel.tolist() == [6, 6, 6, 7, 7, 7]  # t, then u
    assert raw.obs_type.tolist() == [120, 130, 120, 220, 230, 220]
    assert raw.pressure_hpa[0] == 850.0 and np.isnan(raw.pressure_hpa[1]) and np.isnan(raw.height[0])
    assert raw.time_ns[2] == NAT  # int64 sentinel -> missing


def write_gsi_conv_uv(path):
    with netCDF4.Dataset(path, "w") as ds:
        ds.date_time = 2024010100
        ds.createDimension("nobs", 2)
        for n, d in (("Latitude", [10.0, 20.0]), ("Longitude", [100.0, 200.0]), ("Time", [-1.5, 2.0]),
                     ("Pressure", [850.0, 300.0]), ("Height", [1500.0, 9000.0]), ("u_Observation", [5.0, -5.0]),
                     ("v_Observation", [1.0, -1.0])):
            _var(ds, n, "f4", ("nobs",), d)
        _var(ds, "Observation_Type", "i4", ("nobs",), [220, 245])
        _var(ds, "Analysis_Use_Flag", "i4", ("nobs",), [1, -1])


def test_gsi_conv_uv(tmp_path):
    p = tmp_path / "diag_conv_uv_ges.2024010100_control.nc4"
    write_gsi_conv_uv(p)
    raw, fmt = read_obs_file(p)
    assert fmt == "gsi" and len(raw) == 4
    assert raw.channel.tolist() == [7, 7, 8, 8] and raw.value.tolist() == [5.0, -5.0, 1.0, -1.0]
    assert raw.time_ns[0] == int((T - 1.5 * 3600) * 10**9) and raw.cycle_times == [T]
    assert raw.obs_type.tolist() == [220, 245, 220, 245] and raw.use_flag.tolist() == [1, -1, 1, -1]


def write_gsi_radiance(path):
    with netCDF4.Dataset(path, "w") as ds:
        ds.date_time = 2024010106
        ds.createDimension("nobs", 3)
        ds.createDimension("nchans", 15)
        _var(ds, "sensor_chan", "i4", ("nchans",), np.arange(1, 16))
        _var(ds, "Channel_Index", "i4", ("nobs",), [1, 7, 15])
        for n, d in (("Latitude", [0.0, 1.0, 2.0]), ("Longitude", [0.0, 1.0, 2.0]), ("Obs_Time", [0.0, 1.0, -2.9]),
                     ("Observation", [200.0, 230.0, 240.0]), ("Scan_Angle", [1.0, 2.0, 3.0]),
                     ("Sat_Zenith_Angle", [4.0, 5.0, 6.0]), ("Sol_Zenith_Angle", [7.0, 8.0, 9.0])):
            _var(ds, n, "f4", ("nobs",), d)
        _var(ds, "QC_Flag", "i4", ("nobs",), [0, 0, 1])


def test_gsi_radiance_maps_channel_index_through_sensor_chan(tmp_path):
    p = tmp_path / "diag_amsua_n15_ges.2024010106_control.nc4"
    write_gsi_radiance(p)
    raw, fmt = read_obs_file(p)
    assert fmt == "gsi" and raw.sensor.tolist() == [vocab.SENSOR_BY_NAME["amsua"].id] * 3
    assert raw.channel.tolist() == [1, 7, 15] and raw.platform.tolist() == [20] * 3
    assert raw.sat_zenith.tolist() == [4.0, 5.0, 6.0] and raw.cycle_times == [T + 21600]


# ---- file-level errors: InputError naming file (and variable) ----

def _not_netcdf(p):
    p.write_text("station,lat,lon\n")


def _empty(p):
    p.write_bytes(b"")


def _truncated(p):
    write_canonical_by_hand(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 3])


def _unrecognised(p):
    with netCDF4.Dataset(p, "w") as ds:
        ds.createDimension("x", 1)
        _var(ds, "temperature", "f4", ("x",), [1.0])


def _missing_var(p):
    write_canonical_by_hand(p)
    with netCDF4.Dataset(p, "a") as ds:
        ds.renameVariable("lat", "latitude")


def _wrong_dtype(p):
    with netCDF4.Dataset(p, "w") as ds:
        ds.createDimension("obs", 1)
        for n in ("lat", "lon", "value"):
            _var(ds, n, "f4", ("obs",), [1.0])
        _var(ds, "time", "S1", ("obs",), np.array([b"x"]))
        _var(ds, "sensor", "u1", ("obs",), [2])
        _var(ds, "channel", "u2", ("obs",), [1])


@pytest.mark.parametrize(("make", "var", "words"), [
    (_not_netcdf, None, "not a NetCDF"), (_empty, None, "empty"), (_truncated, None, "truncated"),
    (_unrecognised, None, "unrecognised layout"), (_missing_var, "lat", "missing"),
    (_wrong_dtype, "time", "wrong dtype"),
])
def test_file_level_errors(tmp_path, make, var, words):
    p = tmp_path / "bad.nc"
    make(p)
    with pytest.raises(InputError) as exc:
        read_obs_file(p)
    msg = str(exc.value)
    assert str(p) in msg and words in msg and "\n" not in msg
    if var:
        assert f"variable '{var}'" in msg
