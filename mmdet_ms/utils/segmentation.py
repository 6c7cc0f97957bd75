"""Which COCO segmentations a mask can be made of, for the loaders and the evaluation.

Real data sets (TrashCan among them) hold a few annotations whose ``segmentation`` is an empty
list, a polygon of fewer than 3 points, one with an odd number of coordinates, or an RLE of
another size than its image. pycocotools fails on those deep inside (IndexError/TypeError), or
reads a 4-number polygon as a box; the callers drop them with one warning per file instead.
"""

UNUSABLE_DESCRIPTION = ("empty, fewer than 3 points, odd coordinate count, or an RLE of another "
                        "size than its image")


def is_usable_polygon(polygon):
    """A flat list of at least 3 (x, y) number pairs, as pycocotools' ``frPyObjects`` needs."""
    return (isinstance(polygon, list) and len(polygon) >= 6 and len(polygon) % 2 == 0
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in polygon))


def usable_segmentation(segmentation, height, width):
    """(what a mask can be made of, number of polygons dropped): the usable polygons of a polygon
    list, an RLE dict of the image's size as it is; None when nothing usable is left."""
    if isinstance(segmentation, list):
        polygons = [polygon for polygon in segmentation if is_usable_polygon(polygon)]
        return polygons or None, len(segmentation) - len(polygons)
    if (isinstance(segmentation, dict) and "counts" in segmentation
            and list(segmentation.get("size", ())) == [height, width]):
        return segmentation, 0
    return None, 0
