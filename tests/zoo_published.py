"""Published numbers the zoo must reproduce, each with its source.

Kept apart from the tests so that the table generator's tests and the entry tests share them.
"""

# ---------------------------------------------------------------------------------------------
# torchvision: (num_params, GFLOPS) from the weights' metadata, "num_params" and "_ops", of the
# default IMAGENET1K_V1 weights in pytorch/vision torchvision/models/<file>.py (the "GFLOPS"
# column of https://pytorch.org/vision/stable/models.html). "_ops" counts multiply-accumulates of
# convolutions and linear layers, 3 decimals.
TORCHVISION = {
    # torchvision/models/alexnet.py  AlexNet_Weights.IMAGENET1K_V1
    "alexnet": (61_100_840, 0.714),
    # torchvision/models/vgg.py  VGG11_Weights / VGG16_Weights / VGG19_Weights .IMAGENET1K_V1
    "vgg11": (132_863_336, 7.609),
    "vgg16": (138_357_544, 15.47),
    "vgg19": (143_667_240, 19.632),
    # torchvision/models/resnet.py  ResNet{18,34,50,101,152}_Weights.IMAGENET1K_V1
    "resnet18": (11_689_512, 1.814),
    "resnet34": (21_797_672, 3.664),
    "resnet50": (25_557_032, 4.089),
    "resnet101": (44_549_160, 7.801),
    "resnet152": (60_192_808, 11.514),
    # torchvision/models/mobilenetv2.py  MobileNet_V2_Weights.IMAGENET1K_V1
    "mobilenet_v2": (3_504_872, 0.301),
    # torchvision/models/efficientnet.py  EfficientNet_B0_Weights.IMAGENET1K_V1
    "efficientnet_b0": (5_288_548, 0.386),
    # torchvision/models/inception.py  Inception_V3_Weights.IMAGENET1K_V1 (input 299). num_params
    # counts the AuxLogits head (the builder keeps it); _ops is the eval-mode graph without it.
    "inception_v3": (27_161_264, 5.713),
    # torchvision/models/densenet.py  DenseNet{121,161,169,201}_Weights.IMAGENET1K_V1.meta
    # ("num_params", "_ops"; e.g. torchvision.models.DenseNet121_Weights.IMAGENET1K_V1.meta)
    "densenet121": (7_978_856, 2.834),
    "densenet161": (28_681_000, 7.728),
    "densenet169": (14_149_480, 3.36),
    "densenet201": (20_013_928, 4.291),
}

# ---------------------------------------------------------------------------------------------
# Araujo, Norris, Sim, "Computing Receptive Fields of Convolutional Neural Networks", Distill 2019;
# the table: google-research/receptive_field receptive_field/RECEPTIVE_FIELD_TABLE.md.
# end-point: (rf, effective stride, effective padding at resolution None, at 224, at 321);
# None where the table has "None" (padding undefined without the input size).
ARAUJO = {
    "slim_alexnet_v2": {
        "alexnet_v2/conv1": (11, 4, 0, 0, 0),
        "alexnet_v2/pool1": (19, 8, 0, 0, 0),
        "alexnet_v2/conv2": (51, 8, 16, 16, 16),
        "alexnet_v2/conv3": (99, 16, 32, 32, 32),
        "alexnet_v2/conv4": (131, 16, 48, 48, 48),
        "alexnet_v2/conv5": (163, 16, 64, 64, 64),
        "alexnet_v2/pool5": (195, 32, 64, 64, 64),
    },
    "slim_vgg_16": {
        "vgg_16/conv1/conv1_1": (3, 1, 1, 1, 1),
        "vgg_16/pool1": (6, 2, 2, 2, 2),
        "vgg_16/conv2/conv2_1": (10, 2, 4, 4, 4),
        "vgg_16/pool2": (16, 4, 6, 6, 6),
        "vgg_16/conv3/conv3_1": (24, 4, 10, 10, 10),
        "vgg_16/conv3/conv3_2": (32, 4, 14, 14, 14),
        "vgg_16/pool3": (44, 8, 18, 18, 18),
        "vgg_16/conv4/conv4_1": (60, 8, 26, 26, 26),
        "vgg_16/conv4/conv4_2": (76, 8, 34, 34, 34),
        "vgg_16/pool4": (100, 16, 42, 42, 42),
        "vgg_16/conv5/conv5_1": (132, 16, 58, 58, 58),
        "vgg_16/conv5/conv5_2": (164, 16, 74, 74, 74),
        "vgg_16/pool5": (212, 32, 90, 90, 90),
    },
    "slim_mobilenet_v1": {
        "Conv2d_0": (3, 2, None, 0, 1),
        "Conv2d_1_pointwise": (7, 2, None, 2, 3),
        "Conv2d_2_pointwise": (11, 4, None, 2, 5),
        "Conv2d_3_pointwise": (19, 4, None, 6, 9),
        "Conv2d_4_pointwise": (27, 8, None, 6, 13),
        "Conv2d_5_pointwise": (43, 8, None, 14, 21),
        "Conv2d_6_pointwise": (59, 16, None, 14, 29),
        "Conv2d_7_pointwise": (91, 16, None, 30, 45),
        "Conv2d_8_pointwise": (123, 16, None, 46, 61),
        "Conv2d_9_pointwise": (155, 16, None, 62, 77),
        "Conv2d_10_pointwise": (187, 16, None, 78, 93),
        "Conv2d_11_pointwise": (219, 16, None, 94, 109),
        "Conv2d_12_pointwise": (251, 32, None, 94, 125),
        "Conv2d_13_pointwise": (315, 32, None, 126, 157),
    },
    "slim_resnet_v1_50": {
        "resnet_v1_50/block1": (35, 8, None, 15, 17),
        "resnet_v1_50/block2": (99, 16, None, 47, 49),
        "resnet_v1_50/block3": (291, 32, None, 143, 145),
        "resnet_v1_50/block4": (483, 32, None, 239, 241),
    },
    "slim_resnet_v1_101": {
        "resnet_v1_101/block1": (35, 8, None, 15, 17),
        "resnet_v1_101/block2": (99, 16, None, 47, 49),
        "resnet_v1_101/block3": (835, 32, None, 415, 417),
        "resnet_v1_101/block4": (1027, 32, None, 511, 513),
    },
    "slim_inception_v3": {
        "Conv2d_1a_3x3": (3, 2, 0, 0, 0),
        "Conv2d_2a_3x3": (7, 2, 0, 0, 0),
        "Conv2d_2b_3x3": (11, 2, 2, 2, 2),
        "MaxPool_3a_3x3": (15, 4, 2, 2, 2),
        "Conv2d_3b_1x1": (15, 4, 2, 2, 2),
        "Conv2d_4a_3x3": (23, 4, 2, 2, 2),
        "MaxPool_5a_3x3": (31, 8, 2, 2, 2),
        "Mixed_5b": (63, 8, 18, 18, 18),
        "Mixed_5c": (95, 8, 34, 34, 34),
        "Mixed_5d": (127, 8, 50, 50, 50),
        "Mixed_6a": (159, 16, 58, 58, 58),
        "Mixed_6b": (351, 16, 154, 154, 154),
        "Mixed_6c": (543, 16, 250, 250, 250),
        "Mixed_6d": (735, 16, 346, 346, 346),
        "Mixed_6e": (927, 16, 442, 442, 442),
        "Mixed_7a": (1055, 32, 490, 490, 490),
        "Mixed_7b": (1183, 32, 554, 554, 554),
        "Mixed_7c": (1311, 32, 618, 618, 618),
    },
}
