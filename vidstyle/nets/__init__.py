"""Networks: image transformation nets (:mod:`.transformer`, :mod:`.engstrom`), the VGG19 loss
network (:mod:`.vgg`) and the registry of shipped models (:mod:`.registry`)."""
