"""Camera firmware: controller, pre-event ring, crash-safe clip writer, officer feedback."""
