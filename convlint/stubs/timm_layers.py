# Shape model of timm.layers (timm 1.0, Apache-2.0, (c) Ross Wightman): ConvNormAct, create_conv2d,
# BatchNormAct2d and get_padding, with the padding rules of timm's padding.py and conv2d_same.py.
# What they do to shapes, nothing else (activations, drop and device arguments keep the shape); a case
# this model does not cover calls `_not_modelled()`, which convlint cannot know: the result is unknown.
# convlint reads this file; it is never imported.
from torch import nn


def get_padding(kernel_size, stride=1, dilation=1, **_):
    # timm gives the same per dim for tuples (a symbol stands for an int here, as everywhere in convlint)
    if isinstance(kernel_size, (tuple, list)) or isinstance(stride, (tuple, list)) or \
            isinstance(dilation, (tuple, list)):
        return _not_modelled()
    return ((stride - 1) + dilation * (kernel_size - 1)) // 2


def is_static_pad(kernel_size, stride=1, dilation=1, **_):
    return stride == 1 and (dilation * (kernel_size - 1)) % 2 == 0


def create_conv2d(in_channels, out_channels, kernel_size, stride=1, padding='', dilation=1, groups=1,
                  depthwise=False, bias=False, **kwargs):
    if isinstance(kernel_size, (tuple, list)) or isinstance(stride, (tuple, list)) or \
            isinstance(dilation, (tuple, list)):
        return _not_modelled()  # MixedConv2d for a list of kernels, per-dim padding for tuples
    if depthwise:
        groups = in_channels
    if padding == '':
        padding = get_padding(kernel_size, stride, dilation)
    elif padding == 'valid':
        padding = 0
    elif padding == 'same':
        if is_static_pad(kernel_size, stride, dilation):
            padding = get_padding(kernel_size, stride, dilation)
        else:
            return _not_modelled()  # Conv2dSame pads at run time
    elif isinstance(padding, str):
        return _not_modelled()  # timm lowers other spellings first
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
                     groups=groups, bias=bias)


class BatchNormAct2d(nn.Module):
    # BatchNorm2d(num_features), then an activation and a drop layer that keep the shape
    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 apply_act=True, act_layer=nn.ReLU, act_kwargs=None, inplace=True, drop_layer=None,
                 device=None, dtype=None):
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, eps, momentum, affine, track_running_stats)

    def forward(self, x):
        return self.bn(x)


class ConvNormAct(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size=1, stride=1, padding='', dilation=1, groups=1,
                 bias=False, apply_norm=True, apply_act=True, norm_layer=nn.BatchNorm2d, act_layer=nn.ReLU,
                 aa_layer=None, drop_layer=None, conv_kwargs=None, norm_kwargs=None, act_kwargs=None,
                 device=None, dtype=None):
        super().__init__()
        if aa_layer is not None and stride > 1:
            self.conv = _not_modelled()  # the stride moves to an anti-aliasing layer after the conv
        else:
            self.conv = create_conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                                      dilation=dilation, groups=groups, bias=bias)
        if apply_norm:
            self.bn = norm_layer(out_channels)  # timm uses the norm+act form of this norm: the same shape
        else:
            self.bn = nn.Identity()

    def forward(self, x):
        return self.bn(self.conv(x))


ConvBnAct = ConvNormAct
ConvNormActAa = ConvNormAct
