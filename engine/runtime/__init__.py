"""What every computation uses: device selection, the reporter (events, pause / stop), batch-norm recalibration."""
